#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A failure of an atomic write (of a weights file, a model description, a checkpoint or a log): which step
/// failed, for which destination, and why.
///
/// Whatever the step, the destination is left as it was and the temporary file is removed.
public struct AtomicWriteError: Error, CustomStringConvertible, Equatable {
    /// A stage of an atomic write.
    public enum Step: String, Sendable {
        /// Checking that the destination is absent or something a save may replace (a regular file; for a
        /// model, a directory holding only a model's files).
        case checkDestination = "replace it"
        /// Creating the temporary file beside the destination.
        case createTemporaryFile = "create a temporary file"
        /// Writing the bytes into the temporary file.
        case write = "write"
        /// Flushing the temporary file to the storage device.
        case synchronize = "flush to disk"
        /// Renaming the temporary file over the destination.
        case rename = "rename the temporary file over it"
    }

    /// The step that failed.
    public let step: Step
    /// The destination's path.
    public let path: String
    /// The system's explanation.
    public let reason: String

    /// A sentence naming the destination, the step and the reason.
    public var description: String { "could not save \(path): failed to \(step.rawValue): \(reason)" }
}

/// Writes `data` to the file at `url` so that, whenever the process or machine stops, the file holds either
/// its previous contents or all of `data`, never a mixture or a prefix.
///
/// The bytes go to a temporary file `.NAME.tmp-<random>` in the destination's directory (the same file
/// system, which `rename(2)` needs to be atomic), are flushed to the device, and the temporary file is then
/// renamed over the destination. A destination that already exists keeps its permission bits; one that is not a
/// regular file (a symbolic link, a FIFO, a device) is refused, never replaced. On failure
/// the temporary file is removed and an ``AtomicWriteError`` is thrown.
///
/// Model descriptions, weight files and checkpoints all save through this function.
package func writeAtomically(_ data: Data, to url: URL) throws {
    try writeAtomically(data, to: url, beforeRename: { _ in })
}

/// The body of ``writeAtomically(_:to:)``, with a hook run once the temporary file is complete and just
/// before the rename, so tests can interrupt a save at its most delicate point.
package func writeAtomically(_ data: Data, to url: URL, beforeRename: (URL) throws -> Void) throws {
    let destination = url.path
    let directory = url.deletingLastPathComponent()
    // rename(2) would replace a FIFO, a device node or a symbolic link with a regular file.
    if let kind = fileKind(destination), kind != "regular file" {
        throw AtomicWriteError(step: .checkDestination, path: destination, reason: "it is a \(kind), not a regular file")
    }
    let suffix = String(UInt64.random(in: .min ... .max), radix: 16)
    let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).tmp-\(suffix)")

    // O_EXCL: never reuse (and so never clobber) a file someone else created under the same name.
    let descriptor = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
    guard descriptor >= 0 else {
        throw AtomicWriteError(step: .createTemporaryFile, path: destination, reason: systemError())
    }
    var isRenamed = false
    defer { if !isRenamed { unlink(temporary.path) } }

    var existing = stat()
    if stat(destination, &existing) == 0 {
        _ = fchmod(descriptor, existing.st_mode & 0o7777)
    }
    let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
    do {
        try handle.write(contentsOf: data)
    } catch {
        throw AtomicWriteError(step: .write, path: destination, reason: "\(error)")
    }
    do {
        // Without this, a crash soon after the rename can leave the new name pointing at unwritten blocks.
        try handle.synchronize()
        try handle.close()
    } catch {
        throw AtomicWriteError(step: .synchronize, path: destination, reason: "\(error)")
    }

    try beforeRename(temporary)

    guard rename(temporary.path, destination) == 0 else {
        throw AtomicWriteError(step: .rename, path: destination, reason: systemError())
    }
    isRenamed = true
    synchronizeDirectory(directory.path)
}

/// Flushes a directory so that a rename inside it survives a power loss. Best effort: some file systems
/// refuse to open or sync directories, and the data itself is already safe by then.
private func synchronizeDirectory(_ path: String) {
    synchronize(path)
}
