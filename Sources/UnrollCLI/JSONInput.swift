import Foundation
import Graph
import Serialization

/// Model inputs given as JSON for `unroll predict --json`: a nested array of numbers, and predictions written back.
enum JSONInput {
    /// The most bytes of JSON input read (the reader's own limit protects against deeper abuse).
    static let maximumByteCount = 256 << 20

    /// Reads a nested array whose shape is `[batch] + inputShape` from the file at `url`.
    ///
    /// - Throws: ``UsageError`` naming the file and the place (`input.json[1][3]`) of a missing, extra or
    ///   non-numeric element, or a ``JSONError`` position for text that is not JSON.
    static func tensor(contentsOf url: URL, inputShape: [Int]) throws -> Tensor {
        try tensor(JSONField(try parse(url), path: url.lastPathComponent), inputShape: inputShape)
    }

    private static func parse(_ url: URL) throws -> JSON {
        let bytes: Data
        do {
            bytes = try Data(contentsOf: url)
        } catch {
            throw UsageError("cannot read \(url.path): \(error.localizedDescription)", command: "unroll predict")
        }
        do {
            return try JSON.parse(bytes, limits: .init(maximumByteCount: maximumByteCount))
        } catch let error as JSONError {
            throw UsageError("\(url.path): \(error)", command: "unroll predict")
        }
    }

    /// Reads the inputs of a model of `inputShapes.count` inputs: one nested array, or an array of one per input.
    static func tensors(contentsOf url: URL, inputShapes: [[Int]]) throws -> [Tensor] {
        guard inputShapes.count > 1 else { return [try tensor(contentsOf: url, inputShape: inputShapes.first ?? [])] }
        let value = try parse(url)
        let root = JSONField(value, path: url.lastPathComponent)
        let parts = try root.elements()
        guard parts.count == inputShapes.count else {
            throw UsageError("\(root.path): the model has \(inputShapes.count) inputs; give an array of \(inputShapes.count) "
                             + "arrays, found \(value.summary)", command: "unroll predict")
        }
        return try zip(parts, inputShapes).map { try tensor($0, inputShape: $1) }
    }

    /// Returns the tensor of a nested array of shape `[batch] + inputShape`.
    static func tensor(_ root: JSONField, inputShape: [Int]) throws -> Tensor {
        func fail(_ message: String) -> UsageError {
            UsageError("\(message) (the model takes [batch\(inputShape.map { ", \($0)" }.joined())])", command: "unroll predict")
        }
        let batch = try root.elements()
        guard !batch.isEmpty else { throw fail("\(root.path) holds no inputs") }
        var scalars: [Float] = []
        scalars.reserveCapacity(batch.count * inputShape.reduce(1, *))
        func walk(_ field: JSONField, axis: Int) throws {
            if axis == inputShape.count {
                guard case .number(let number) = field.value, Float(number.value).isFinite else {
                    throw fail("\(field.path): expected a finite number, found \(field.value.summary)")
                }
                scalars.append(Float(number.value))
                return
            }
            guard case .array(let elements) = field.value, elements.count == inputShape[axis] else {
                throw fail("\(field.path): expected an array of \(inputShape[axis]), found \(field.value.summary)")
            }
            for element in try field.elements() { try walk(element, axis: axis + 1) }
        }
        for sample in batch { try walk(sample, axis: 0) }
        return Tensor(shape: [batch.count] + inputShape, scalars: scalars)
    }

    /// Returns a tensor as nested JSON arrays, outermost axis first.
    static func json(_ tensor: Tensor) -> JSON {
        let scalars = tensor.scalars
        func nest(_ axis: Int, _ offset: Int) -> JSON {
            // The float's shortest decimal, so 0.1 prints as 0.1 rather than 0.10000000149011612.
            if axis == tensor.rank { return .number(JSONNumber(Double("\(scalars[offset])") ?? Double(scalars[offset]))) }
            let stride = tensor.shape[(axis + 1)...].reduce(1, *)
            return .array((0..<tensor.shape[axis]).map { nest(axis + 1, offset + $0 * stride) })
        }
        return nest(0, 0)
    }
}
