#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

// A model directory is replaced as a whole: a complete new directory is written beside it and flushed, then the
// two are swapped in one step. After a kill at any moment the directory is exactly the old one or exactly the
// new one, never a mixture of their files.

/// How ``replaceDirectoryAtomically(at:with:mayDiscard:swap:beforeSwap:)`` puts the new directory in place.
package enum DirectorySwap: Sendable {
    /// `renameat2(RENAME_EXCHANGE)` where the kernel offers it (Linux ≥ 3.15 on most file systems): one step,
    /// the name never missing; else the two renames of ``twoRenames``.
    case exchangeIfAvailable
    /// `rename(DIR, .DIR.old-X)` then `rename(.DIR.tmp-Y, DIR)`. Between the two the name is missing and the old
    /// model sits complete at `.DIR.old-X`: ``resolvedModelDirectory(_:)`` reads it there, and the next save
    /// puts it back before anything else.
    case twoRenames
}

/// Replaces the directory at `url` with one holding exactly `files` (name and bytes), atomically as a whole.
///
/// Steps: clean the temporaries an interrupted save left beside `url` (`.NAME.tmp-*` are removed; a
/// `.NAME.old-*` is moved back when `url` is missing, else removed); write every file into a new directory
/// `.NAME.tmp-<random>` beside `url`, flushing each file and the directory; swap it with `url`; flush the parent;
/// remove the old directory.
///
/// An existing `url` must be a real directory (not a symbolic link) holding only regular files for which
/// `mayDiscard` returns true, so a mistaken path (`--out .`) never throws away anything but an old model.
///
/// - Throws: ``AtomicWriteError`` naming the step that failed; `url` is then left as it was.
package func replaceDirectoryAtomically(at url: URL, with files: [(name: String, data: Data)],
                                        mayDiscard: (String) -> Bool, swap: DirectorySwap = .exchangeIfAvailable,
                                        beforeSwap: (URL) throws -> Void = { _ in }) throws {
    let destination = url.standardizedFileURL.path
    let parent = url.standardizedFileURL.deletingLastPathComponent()
    let name = url.standardizedFileURL.lastPathComponent
    func failure(_ step: AtomicWriteError.Step, _ reason: String) -> AtomicWriteError {
        AtomicWriteError(step: step, path: destination, reason: reason)
    }
    do {
        try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
    } catch {
        throw failure(.createTemporaryFile, "cannot create the folder \(parent.path): \(error.localizedDescription)")
    }
    try restoreOrRemoveTemporaries(of: name, in: parent.path, failure: failure)
    if let kind = fileKind(destination) {
        guard kind == "directory" else { throw failure(.checkDestination, "it is a \(kind), not a model directory") }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: destination)) ?? []
        let foreign = entries.filter { entry in
            !mayDiscard(entry) || fileKind(destination + "/" + entry) != "regular file"
        }.sorted()
        guard foreign.isEmpty else {
            throw failure(.checkDestination, "it holds \(foreign.map { "'\($0)'" }.joined(separator: ", ")), which "
                          + "a saved model does not; choose a new or empty directory")
        }
    }

    let temporary = parent.path + "/.\(name).tmp-" + String(UInt64.random(in: .min ... .max), radix: 16)
    guard mkdir(temporary, 0o755) == 0 else { throw failure(.createTemporaryFile, systemError()) }
    var isSwapped = false
    defer { if !isSwapped { try? FileManager.default.removeItem(atPath: temporary) } }
    for (fileName, data) in files {
        try writeNewFile(data, at: temporary + "/" + fileName, failure: failure)
    }
    guard synchronize(temporary) else { throw failure(.synchronize, systemError()) }
    try beforeSwap(URL(fileURLWithPath: temporary, isDirectory: true))

    guard fileKind(destination) != nil else {
        guard rename(temporary, destination) == 0 else { throw failure(.rename, systemError()) }
        isSwapped = true
        _ = synchronize(parent.path)
        return
    }
    if swap == .exchangeIfAvailable, let exchange = renameExchange() {
        if exchange(AT_FDCWD, temporary, AT_FDCWD, destination, 2 /* RENAME_EXCHANGE */) == 0 {
            isSwapped = true
            _ = synchronize(parent.path)
            try? FileManager.default.removeItem(atPath: temporary)  // now the old model
            return
        }
        guard errno == EINVAL || errno == ENOSYS || errno == ENOTSUP else { throw failure(.rename, systemError()) }
    }
    let old = parent.path + "/.\(name).old-" + String(UInt64.random(in: .min ... .max), radix: 16)
    guard rename(destination, old) == 0 else { throw failure(.rename, systemError()) }
    guard rename(temporary, destination) == 0 else {
        let reason = systemError()
        _ = rename(old, destination)
        throw failure(.rename, reason)
    }
    isSwapped = true
    _ = synchronize(parent.path)
    try? FileManager.default.removeItem(atPath: old)
}

/// Returns the directory a model at `url` is read from: `url`, or, when a save using two renames was
/// interrupted between them, the complete old model it set aside (`.NAME.old-*`).
package func resolvedModelDirectory(_ url: URL) -> URL {
    let path = url.standardizedFileURL.path
    guard fileKind(path) == nil else { return url }
    let parent = url.standardizedFileURL.deletingLastPathComponent()
    let prefix = ".\(url.standardizedFileURL.lastPathComponent).old-"
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: parent.path)) ?? []
    guard let old = entries.filter({ $0.hasPrefix(prefix) }).sorted().first else { return url }
    return parent.appendingPathComponent(old, isDirectory: true)
}

/// Removes what an interrupted save of `name` left in `parent`, first moving a set-aside old model back.
private func restoreOrRemoveTemporaries(of name: String, in parent: String,
                                        failure: (AtomicWriteError.Step, String) -> AtomicWriteError) throws {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []
    for entry in entries.sorted() where entry.hasPrefix(".\(name).old-") {
        if fileKind(parent + "/" + name) == nil {
            guard rename(parent + "/" + entry, parent + "/" + name) == 0 else { throw failure(.rename, systemError()) }
            _ = synchronize(parent)
        } else {
            try? FileManager.default.removeItem(atPath: parent + "/" + entry)
        }
    }
    for entry in entries where entry.hasPrefix(".\(name).tmp-") {
        try? FileManager.default.removeItem(atPath: parent + "/" + entry)
    }
}

/// Creates the file at `path` (which must not exist), writes `data` and flushes it to the device.
private func writeNewFile(_ data: Data, at path: String,
                          failure: (AtomicWriteError.Step, String) -> AtomicWriteError) throws {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else { throw failure(.createTemporaryFile, "\(path): \(systemError())") }
    let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
    do {
        try handle.write(contentsOf: data)
    } catch {
        throw failure(.write, "\(path): \(error.localizedDescription)")
    }
    do {
        try handle.synchronize()
        try handle.close()
    } catch {
        throw failure(.synchronize, "\(path): \(error.localizedDescription)")
    }
}

/// Flushes a file or directory to the device; false when it cannot be opened or flushed.
@discardableResult
func synchronize(_ path: String) -> Bool {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { return false }
    defer { close(descriptor) }
    return fsync(descriptor) == 0
}

/// What is at `path` without following a symbolic link ("regular file", "directory", "symbolic link", "FIFO",
/// "device", "socket"), or `nil` when nothing is.
func fileKind(_ path: String) -> String? {
    var status = stat()
    guard lstat(path, &status) == 0 else { return nil }
    switch status.st_mode & S_IFMT {
    case S_IFREG: return "regular file"
    case S_IFDIR: return "directory"
    case S_IFLNK: return "symbolic link"
    case S_IFIFO: return "FIFO"
    case S_IFCHR, S_IFBLK: return "device"
    case S_IFSOCK: return "socket"
    default: return "special file"
    }
}

private typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32

/// glibc's `renameat2`, looked up at run time: Swift's Glibc module does not declare it (it is a GNU extension).
private func renameExchange() -> RenameAt2? {
    #if os(Linux)
    guard let symbol = dlsym(nil, "renameat2") else { return nil }
    return unsafeBitCast(symbol, to: RenameAt2.self)
    #else
    return nil
    #endif
}

func systemError() -> String {
    String(cString: strerror(errno))
}
