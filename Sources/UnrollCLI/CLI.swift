import Foundation
import Train

/// The `unroll` command-line tool, as a library so tests can run it in-process.
public enum CLI {
    /// Runs the tool with `arguments` (without the program name), writing to `output`; returns the exit status.
    public static func run(_ arguments: [String], output: inout some TextOutputStream) -> Int32 {
        print("unroll: under construction", to: &output)
        return 0
    }
}
