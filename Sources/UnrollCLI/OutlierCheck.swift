import Foundation
import Graph

/// Finds rows of a series whose values lie far outside the rest, so `train` can warn before a typo or a sensor
/// glitch (a 1e20 among values near 100) dominates the scaler and the loss.
enum OutlierCheck {
    /// How many median absolute deviations from the median make a value an outlier. Robust statistics, so the
    /// outliers themselves do not widen the yardstick; wide enough that a trending series (the airline
    /// passengers grow fourfold) raises nothing.
    static let threshold = 20.0

    /// Returns, per column name, the rows (counted from 1 after the header) whose value is more than
    /// ``threshold`` median absolute deviations from the column's median. A constant column flags nothing.
    static func outlierRows(_ series: Tensor, columns: [String]) -> [(column: String, rows: [Int])] {
        let rows = series.shape[0], width = series.shape[1]
        let values = series.scalars
        var result: [(column: String, rows: [Int])] = []
        for (column, name) in columns.enumerated() where column < width {
            let column = (0..<rows).map { Double(values[$0 * width + column]) }
            let median = Self.median(column)
            let deviation = Self.median(column.map { Swift.abs($0 - median) })
            guard deviation > 0 else { continue }
            let flagged = column.indices.filter { Swift.abs(column[$0] - median) > threshold * deviation }.map { $0 + 1 }
            if !flagged.isEmpty { result.append((name, flagged)) }
        }
        return result
    }

    /// A warning sentence per column with outliers (at most 10 rows named).
    static func warnings(_ series: Tensor, columns: [String], file: String) -> [String] {
        outlierRows(series, columns: columns).map { column, rows in
            let shown = rows.prefix(10).map(String.init).joined(separator: ", ") + (rows.count > 10 ? ", ..." : "")
            return "warning: \(file): column '\(column)' has \(rows.count) value(s) far outside the rest (more than "
                + "\(Int(threshold)) median absolute deviations from the median) in row(s) \(shown) (counted from 1 "
                + "after the header); check the data."
        }
    }

    private static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
}
