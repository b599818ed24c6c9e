import Foundation

/// A line chart written as a standalone SVG document: axes with rounded ticks, one polyline per series,
/// a legend, and optionally a shaded region (such as the training period).
struct SVGPlot {
    /// One line of the chart.
    struct Series {
        /// The legend's text.
        var name: String
        /// A CSS colour.
        var color: String
        /// The points, in drawing order.
        var points: [(x: Double, y: Double)]
        /// Whether the line is dashed.
        var isDashed = false
    }

    var title: String
    var xLabel: String
    var yLabel: String
    var series: [Series] = []
    /// An x interval drawn as a light band with a caption.
    var shadedRegion: (range: ClosedRange<Double>, caption: String)?
    /// Whether the y axis is logarithmic (every y must then be positive).
    var isLogarithmic = false
    /// How x tick values are written.
    var formatX: (Double) -> String = { SVGPlot.format($0) }
    var width = 760.0
    var height = 420.0

    private let margin = (left: 70.0, right: 20.0, top: 40.0, bottom: 55.0)

    /// Returns the SVG document.
    func render() -> String {
        let allPoints = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite && (!isLogarithmic || $0.y > 0) }
        var (xMin, xMax) = (allPoints.map(\.x).min() ?? 0, allPoints.map(\.x).max() ?? 1)
        var (yMin, yMax) = (allPoints.map { transformY($0.y) }.min() ?? 0, allPoints.map { transformY($0.y) }.max() ?? 1)
        if xMax <= xMin { (xMin, xMax) = (xMin - 1, xMax + 1) }
        if yMax <= yMin { (yMin, yMax) = (yMin - 1, yMax + 1) }
        let xTicks = SVGPlot.niceTicks(from: xMin, to: xMax)
        let yTicks = isLogarithmic ? SVGPlot.logarithmicTicks(from: yMin, to: yMax) : SVGPlot.niceTicks(from: yMin, to: yMax)
        if !isLogarithmic {
            yMin = min(yMin, yTicks.first ?? yMin)
            yMax = max(yMax, yTicks.last ?? yMax)
        }
        let plotWidth = width - margin.left - margin.right, plotHeight = height - margin.top - margin.bottom
        func px(_ x: Double) -> Double { margin.left + (x - xMin) / (xMax - xMin) * plotWidth }
        func py(_ y: Double) -> Double { margin.top + (1 - (y - yMin) / (yMax - yMin)) * plotHeight }

        var svg = [
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" "
                + "viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">",
            "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
            "<text x=\"\(r(width / 2))\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">\(escape(title))</text>",
        ]
        if let (range, caption) = shadedRegion {
            let left = px(max(range.lowerBound, xMin)), right = px(min(range.upperBound, xMax))
            svg.append("<rect x=\"\(r(left))\" y=\"\(r(margin.top))\" width=\"\(r(max(0, right - left)))\" "
                       + "height=\"\(r(plotHeight))\" fill=\"#eef2f7\"/>")
            svg.append("<text x=\"\(r(left + 6))\" y=\"\(r(margin.top + 16))\" fill=\"#667\">\(escape(caption))</text>")
        }
        for tick in yTicks where tick >= yMin && tick <= yMax {
            svg.append("<line x1=\"\(r(margin.left))\" x2=\"\(r(margin.left + plotWidth))\" y1=\"\(r(py(tick)))\" "
                       + "y2=\"\(r(py(tick)))\" stroke=\"#ddd\"/>")
            let label = isLogarithmic ? SVGPlot.format(Foundation.pow(10, tick)) : SVGPlot.format(tick)
            svg.append("<text x=\"\(r(margin.left - 6))\" y=\"\(r(py(tick) + 4))\" text-anchor=\"end\">\(escape(label))</text>")
        }
        for tick in xTicks where tick >= xMin && tick <= xMax {
            svg.append("<line x1=\"\(r(px(tick)))\" x2=\"\(r(px(tick)))\" y1=\"\(r(margin.top + plotHeight))\" "
                       + "y2=\"\(r(margin.top + plotHeight + 5))\" stroke=\"#333\"/>")
            svg.append("<text x=\"\(r(px(tick)))\" y=\"\(r(margin.top + plotHeight + 19))\" text-anchor=\"middle\">"
                       + "\(escape(formatX(tick)))</text>")
        }
        svg.append("<rect x=\"\(r(margin.left))\" y=\"\(r(margin.top))\" width=\"\(r(plotWidth))\" height=\"\(r(plotHeight))\" "
                   + "fill=\"none\" stroke=\"#333\"/>")
        svg.append("<text x=\"\(r(margin.left + plotWidth / 2))\" y=\"\(r(height - 12))\" text-anchor=\"middle\">\(escape(xLabel))</text>")
        svg.append("<text transform=\"translate(18 \(r(margin.top + plotHeight / 2))) rotate(-90)\" "
                   + "text-anchor=\"middle\">\(escape(yLabel))</text>")
        for line in series where !line.points.isEmpty {
            let coordinates = line.points.filter { $0.x.isFinite && $0.y.isFinite && (!isLogarithmic || $0.y > 0) }
                .map { "\(r(px($0.x))),\(r(py(transformY($0.y))))" }.joined(separator: " ")
            svg.append("<polyline points=\"\(coordinates)\" fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"1.8\""
                       + (line.isDashed ? " stroke-dasharray=\"5 4\"" : "") + "/>")
        }
        for (index, line) in series.enumerated() {
            let y = margin.top + 14 + Double(index) * 18, x = margin.left + plotWidth - 210
            svg.append("<line x1=\"\(r(x))\" x2=\"\(r(x + 24))\" y1=\"\(r(y - 4))\" y2=\"\(r(y - 4))\" stroke=\"\(line.color)\" "
                       + "stroke-width=\"2\"" + (line.isDashed ? " stroke-dasharray=\"5 4\"" : "") + "/>")
            svg.append("<text x=\"\(r(x + 30))\" y=\"\(r(y))\">\(escape(line.name))</text>")
        }
        svg.append("</svg>")
        return svg.joined(separator: "\n") + "\n"
    }

    private func transformY(_ y: Double) -> Double { isLogarithmic ? Foundation.log10(y) : y }

    private func r(_ value: Double) -> String { String(format: "%.1f", value) }

    private func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// Returns about five round tick values (steps of 1, 2 or 5 times a power of ten) covering `low...high`.
    static func niceTicks(from low: Double, to high: Double, count: Int = 5) -> [Double] {
        let rough = (high - low) / Double(count)
        let exponent = Int(Foundation.floor(Foundation.log10(rough)))
        let multiple = [1, 2, 5, 10].first { Double($0) * Foundation.pow(10, Double(exponent)) >= rough } ?? 10
        // Ticks are whole multiples of `multiple` scaled by a power of ten; dividing by 10^-exponent (exact)
        // rather than multiplying by 10^exponent (inexact) keeps 0.6 from printing as 0.6000000000000001.
        let value = { (k: Int) in
            exponent >= 0 ? Double(k * multiple) * Foundation.pow(10, Double(exponent))
                          : Double(k * multiple) / Foundation.pow(10, Double(-exponent))
        }
        let step = value(1)
        let first = Int(Foundation.floor(low / step)), last = Int(Foundation.ceil(high / step))
        return (first...last).map(value)
    }

    /// Returns the integer powers of ten (as exponents) within `low...high`, or the ends if there are fewer than two.
    static func logarithmicTicks(from low: Double, to high: Double) -> [Double] {
        let ticks = stride(from: Foundation.ceil(low), through: Foundation.floor(high), by: 1).map { $0 }
        return ticks.count >= 2 ? ticks : [low, high]
    }

    /// Writes a number briefly: integers without decimals, others with up to four significant digits.
    static func format(_ value: Double) -> String {
        if value == value.rounded() && Swift.abs(value) < 1e9 { return String(Int(value)) }
        return String(format: "%.4g", value)
    }
}
