// The one checking helper for programmer errors. Swift drops the message of `precondition` under `-O`, so a
// release build would trap with a bare stack dump; `fatalError` keeps its message in every build mode.

/// Traps with `message` (kept in release builds, unlike `precondition`'s) unless `condition` holds.
///
/// For programmer errors only (a tensor op called with shapes that cannot meet, a layer used before it is
/// built). Bad outside input (files, arrays handed to `fit`, command-line flags) throws a typed error instead.
@inlinable @inline(__always)
package func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
                   file: StaticString = #file, line: UInt = #line) {
    if _slowPath(!condition()) { checkFailed(message(), file: file, line: line) }
}

/// Traps with `message`, kept in release builds; the cold half of ``check(_:_:file:line:)``.
@usableFromInline @inline(never)
package func checkFailed(_ message: String, file: StaticString = #file, line: UInt = #line) -> Never {
    fatalError(message, file: file, line: line)
}
