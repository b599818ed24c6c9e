import Foundation
import Serialization

/// An output path a command cannot write, found before any work is done.
struct OutputPathError: Error, Equatable, CustomStringConvertible {
    /// The option (`--out`).
    let option: String
    /// The path given.
    let path: String
    /// Why it cannot be written.
    let reason: String

    /// A sentence naming the option, the path and the reason.
    var description: String { "cannot write \(option) '\(path)': \(reason)." }
}

extension Arguments {
    /// Returns the output path of option `name` (or `defaultPath`), checked before the command does any work: not
    /// empty, its folder a writable directory (or creatable inside one), and what is there already replaceable: a
    /// regular file for a file, a model directory or an empty one for `isModelDirectory`, a directory otherwise.
    ///
    /// - Throws: ``UsageError`` for an empty path, ``OutputPathError`` for one that cannot be written.
    func outputPath(_ name: String, default defaultPath: String, kind: OutputKind) throws -> URL {
        let path = string(name) ?? defaultPath
        guard !path.isEmpty else { throw UsageError("option '--\(name)' is empty; give a path", command: command) }
        let url = URL(fileURLWithPath: path, isDirectory: kind != .file).standardizedFileURL
        func fail(_ reason: String) -> OutputPathError { OutputPathError(option: "--\(name)", path: path, reason: reason) }

        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) {
            switch kind {
            case .file:
                guard !isDirectory.boolValue else { throw fail("it is a directory, not a file") }
            case .directory, .modelDirectory:
                guard isDirectory.boolValue else { throw fail("it is a file, not a directory") }
            }
            if kind == .modelDirectory {
                let foreign = ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? [])
                    .filter { !ModelDirectory.knownFileNames.contains($0) }.sorted()
                guard foreign.isEmpty else {
                    throw fail("it holds \(foreign.prefix(3).map { "'\($0)'" }.joined(separator: ", "))"
                               + (foreign.count > 3 ? " and \(foreign.count - 3) more" : "")
                               + ", which a saved model does not; choose a new or empty directory")
                }
            }
        }
        // The nearest folder that exists must be a directory the process may write into.
        var folder = url.deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory) {
            folder = folder.deletingLastPathComponent()
        }
        guard isDirectory.boolValue else { throw fail("\(folder.path) is a file, not a directory") }
        guard FileManager.default.isWritableFile(atPath: folder.path) else {
            throw fail("the directory \(folder.path) is not writable")
        }
        return url
    }

    /// What an output path names.
    enum OutputKind {
        /// One file (a plot, a DOT graph).
        case file
        /// A directory of files.
        case directory
        /// A saved model's directory, replaced as a whole.
        case modelDirectory
    }
}
