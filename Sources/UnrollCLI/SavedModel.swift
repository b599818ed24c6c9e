import Foundation
import Serialization
import Train

/// A saved model as the command line meets it: a `.keras` file or a model directory, holding a Sequential model
/// or a functional one.
enum SavedModel {
    case sequential(Sequential)
    case functional(Model)

    /// Loads the model at `url`, telling the four kinds apart by the file (a `.keras` file's configuration, a
    /// directory's `model.json` format); a loaded model is not compiled.
    static func load(_ url: URL) throws -> SavedModel {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory)
        if exists, !isDirectory.boolValue {
            if try KerasFile.isFunctional(bytes: try KerasFile.readBytes(url), source: url.path) {
                return .functional(try Model.load(keras: url, compile: false))
            }
        } else if url.pathExtension != "keras", (try? ModelDirectory.kind(of: url)) == .functional {
            return .functional(try Model.load(from: url))
        }
        // Any problem reading the directory is reported by the Sequential loader, naming the file.
        return .sequential(try Sequential.load(url, compile: false))
    }

    /// Whether `url` holds a functional model (a `.keras` file or a model directory); `false` when it cannot be read.
    static func isFunctional(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else { return false }
        if isDirectory.boolValue { return (try? ModelDirectory.kind(of: url)) == .functional }
        return (try? KerasFile.isFunctional(bytes: try KerasFile.readBytes(url), source: url.path)) == true
    }

    /// The model's Keras-style summary.
    var summary: String {
        switch self {
        case .sequential(let model): model.summary()
        case .functional(let model): model.summary()
        }
    }
}
