import Foundation

/// Keras-style progress output: `5/5 ━━━━━━━━━━━━━━━━━━━━ 0s 12ms/step - loss: 0.0123`.
enum Progress {
    static let width = 20

    static func bar(step: Int, of total: Int) -> String {
        let filled = total == 0 ? width : width * step / total
        return String(repeating: "━", count: filled) + String(repeating: "─", count: width - filled)
    }

    static func format(_ logs: [(String, Float)]) -> String {
        logs.map { " - \($0.0): \(String(format: "%.4f", $0.1))" }.joined()
    }

    static func timing(_ elapsed: Double, steps: Int) -> String {
        let perStep = elapsed / Double(max(steps, 1))
        let unit = perStep >= 1 ? String(format: "%.0fs/step", perStep) : perStep >= 0.001
            ? String(format: "%.0fms/step", perStep * 1000) : String(format: "%.0fus/step", perStep * 1e6)
        return String(format: "%.0fs", elapsed) + " " + unit
    }

    /// Redraws the current line (terminals only).
    static func redraw(step: Int, of total: Int, elapsed: Double, logs: [(String, Float)]) {
        let text = "\r\(step)/\(total) \(bar(step: step, of: total)) \(timing(elapsed, steps: step))\(format(logs))"
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    /// Prints the epoch's final line (with `Epoch i/n` first in one-line mode).
    static func finish(step: Int, of total: Int, elapsed: Double, logs: [String: Float], epoch: (Int, Int)?) {
        let ordered = logs.sorted { ($0.key.hasPrefix("val_") ? 1 : 0, $0.key == "loss" ? "" : $0.key) < ($1.key.hasPrefix("val_") ? 1 : 0, $1.key == "loss" ? "" : $1.key) }
            .map { ($0.key, $0.value) }
        let prefix = epoch.map { "Epoch \($0.0)/\($0.1) - " } ?? "\r\(step)/\(total) \(bar(step: step, of: total)) "
        print(prefix + timing(elapsed, steps: step) + format(ordered))
    }
}
