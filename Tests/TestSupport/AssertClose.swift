import Graph
import XCTest

/// Asserts that two tensors have the same shape, then that every element agrees within
/// `tolerance` times the larger of 1e-6 and the expected tensor's largest magnitude.
///
/// The message names `label` and the first element that differs, with both values.
public func assertClose(_ actual: Tensor, _ expected: Tensor, tolerance: Float = 1e-4, _ label: String = "",
                        file: StaticString = #filePath, line: UInt = #line) {
    guard actual.shape == expected.shape else {
        XCTFail("\(label): shape \(actual.shape) differs from expected \(expected.shape)", file: file, line: line)
        return
    }
    let a = actual.scalars, e = expected.scalars
    let scale = max(1e-6, e.map { Swift.abs($0) }.max() ?? 0)
    var worst = 0, worstError: Float = -1
    for i in a.indices {
        let error = a[i].isNaN != e[i].isNaN ? Float.infinity : (a[i].isNaN ? 0 : Swift.abs(a[i] - e[i]))
        if !(error <= worstError) { worst = i; worstError = error }
    }
    if a.isEmpty { return }
    if !(worstError <= tolerance * scale) {
        XCTFail("\(label): element \(worst) is \(a[worst]), expected \(e[worst]) (relative error \(worstError / scale), tolerance \(tolerance))",
                file: file, line: line)
    }
}

/// Asserts that two tensors agree (shape first), given as a tensor and scalars of the same shape.
public func assertClose(_ actual: Tensor, shape: [Int], _ expected: [Float], tolerance: Float = 1e-4,
                        _ label: String = "", file: StaticString = #filePath, line: UInt = #line) {
    assertClose(actual, Tensor(shape: shape, scalars: expected), tolerance: tolerance, label, file: file, line: line)
}

/// Returns the largest relative difference between two tensors of equal shape, scaled by the
/// expected tensor's largest magnitude.
public func relativeError(_ actual: Tensor, _ expected: Tensor) -> Float {
    precondition(actual.shape == expected.shape, "relativeError: shapes \(actual.shape) and \(expected.shape) differ")
    let a = actual.scalars, e = expected.scalars
    let scale = max(1e-6, e.map { Swift.abs($0) }.max() ?? 0)
    return zip(a, e).map { Swift.abs($0 - $1) }.max().map { $0 / scale } ?? 0
}

/// Asserts that two float arrays have the same count and the same bit patterns (−0 and +0, NaN payloads included),
/// naming `label` and the first float that differs.
public func assertSameBits(_ got: [Float], _ expected: [Float], _ label: String,
                           file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(got.count, expected.count, label, file: file, line: line)
    let first = got.indices.first { index in
        index >= expected.count || got[index].bitPattern != expected[index].bitPattern
    }
    XCTAssertNil(first, "\(label): first differing float at \(first ?? -1)", file: file, line: line)
}
