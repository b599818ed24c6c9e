import Foundation

/// `manifest.json`: the size and CRC-32 of every other file of a model directory, written in the same atomic
/// save, so `load` detects any file that was changed, truncated or swapped for another save's.
///
/// ```json
/// { "format": "unroll.manifest", "files": [
///     { "name": "model.safetensors", "bytes": 1234, "crc32": "1c291ca3" }, ... ] }
/// ```
/// A file that is read must have an entry: a missing entry is an error, not "unchecked".
package struct ModelManifest: Equatable, Sendable {
    /// The manifest's file name inside a model directory.
    package static let fileName = "manifest.json"
    static let format = "unroll.manifest"

    /// One file's record.
    package struct Entry: Equatable, Sendable {
        var name: String
        var byteCount: Int
        var crc32: String
    }

    private(set) var entries: [Entry]

    /// Records every file.
    package init(files: [(name: String, data: Data)]) {
        entries = files.map { Entry(name: $0.name, byteCount: $0.data.count, crc32: hexadecimal(CRC32.checksum(of: $0.data))) }
    }

    /// The manifest as JSON text.
    package func encoded() -> Data {
        let files = entries.map { entry in
            JSON.object(JSONObject(["name": .string(entry.name), "bytes": .number(JSONNumber(entry.byteCount)),
                                    "crc32": .string(entry.crc32)]))
        }
        let root = JSON.object(JSONObject(["format": .string(Self.format), "files": .array(files)]))
        return Data((root.serialized(pretty: true) + "\n").utf8)
    }

    /// Reads the manifest of `directory`, or returns `nil` when there is none (a model saved before manifests).
    ///
    /// - Throws: ``ModelArchiveError/invalidDescription(file:reason:)`` for a manifest that is not one.
    package static func read(in directory: URL) throws -> ModelManifest? {
        let url = directory.appendingPathComponent(fileName)
        guard fileKind(url.path) != nil else { return nil }
        let bytes = try readModelFile(url, limit: 1 << 20)
        do {
            let root = JSONField(try JSON.parse(bytes), path: fileName)
            guard try root.field("format").string() == format else {
                throw JSONError.invalidValue(path: "\(fileName).format", value: try root.field("format").value.summary,
                                             requirement: "'\(format)'")
            }
            var entries: [Entry] = []
            for file in try root.field("files").elements() {
                let name = try file.field("name").string()
                let crc32 = try file.field("crc32").string()
                guard crc32.count == 8, crc32.allSatisfy(\.isHexDigit) else {
                    throw JSONError.invalidValue(path: file.path + ".crc32", value: crc32, requirement: "8 hexadecimal digits")
                }
                guard !entries.contains(where: { $0.name == name }) else {
                    throw JSONError.invalidValue(path: file.path + ".name", value: name, requirement: "listed once")
                }
                entries.append(Entry(name: name, byteCount: try file.field("bytes").int(in: 0...Int(Int32.max)),
                                     crc32: crc32.lowercased()))
            }
            return ModelManifest(entries: entries)
        } catch let error as JSONError {
            throw ModelArchiveError.invalidDescription(file: url.path, reason: error.description)
        }
    }

    private init(entries: [Entry]) { self.entries = entries }

    /// Throws unless the manifest records `name` with exactly this size and CRC-32.
    ///
    /// - Throws: ``ModelArchiveError/missingChecksum(file:manifest:)`` when `name` has no entry,
    ///   ``ModelArchiveError/checksumMismatch(file:recorded:computed:)`` when the bytes differ.
    package func verify(_ name: String, data: Data, in directory: URL) throws {
        let path = directory.appendingPathComponent(name).path
        guard let entry = entries.first(where: { $0.name == name }) else {
            throw ModelArchiveError.missingChecksum(file: path, manifest: directory.appendingPathComponent(Self.fileName).path)
        }
        let computed = hexadecimal(CRC32.checksum(of: data))
        guard entry.byteCount == data.count, entry.crc32 == computed else {
            throw ModelArchiveError.checksumMismatch(file: path, recorded: "\(entry.byteCount) bytes, CRC-32 \(entry.crc32)",
                                                     computed: "\(data.count) bytes, CRC-32 \(computed)")
        }
    }
}

/// Returns the bytes of a model directory's file, refusing one larger than `limit` before reading it.
///
/// - Throws: ``ModelArchiveError/missingFile(path:)``, ``ModelArchiveError/unreadableFile(path:reason:)``.
package func readModelFile(_ url: URL, limit: Int) throws -> Data {
    guard let kind = fileKind(url.path) else { throw ModelArchiveError.missingFile(path: url.path) }
    guard kind == "regular file" else {
        throw ModelArchiveError.unreadableFile(path: url.path, reason: "it is a \(kind), not a regular file")
    }
    let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
    guard size <= limit else {
        throw ModelArchiveError.unreadableFile(path: url.path, reason: "\(size) bytes is more than the \(limit) allowed")
    }
    do {
        return try Data(contentsOf: url, options: .mappedIfSafe)
    } catch {
        throw ModelArchiveError.unreadableFile(path: url.path, reason: error.localizedDescription)
    }
}
