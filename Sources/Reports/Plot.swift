import Foundation

/// One quantization type on the size/quality plot.
public struct PlotPoint: Sendable {
    /// The type as shown next to its marker (`q4_k_m`).
    public var label: String
    public var sizeBytes: Int
    /// Mean KL divergence against the unquantized reference; zero (the reference itself) and
    /// non-finite values cannot sit on a log axis and are left out.
    public var kld: Double
    /// Measured in memory rather than from a loadable file: drawn hollow and labelled as such.
    public var simulated: Bool
    /// Which of the plot's `seriesNames` the point belongs to; ignored when the plot is given fewer
    /// than two names.
    public var series: Int

    public init(label: String, sizeBytes: Int, kld: Double, simulated: Bool = false, series: Int = 0) {
        self.label = label
        self.sizeBytes = sizeBytes
        self.kld = kld
        self.simulated = simulated
        self.series = series
    }
}

/// File size against KL divergence for the types `compare` measured, with the Pareto front: the
/// picture that answers "which type should I ship at this size".
///
/// Given two or more `seriesNames`, it compares kinds of file on the same axes (planned mixes
/// against llama-quantize's file types, say): each series is drawn in its own colour with its own
/// front, computed among its own points, and the legend names the series. Points whose `series`
/// has no name are left out, since nothing would say what they are. With fewer names the picture
/// is the one-series plot, whatever the points' `series`.
public enum SizeQualityPlot {
    /// A standalone SVG document, 800×500.
    public static func svg(_ points: [PlotPoint], title: String, seriesNames: [String] = []) -> String {
        SVGWriter.render(PlotLayout(points: points, title: title, seriesNames: seriesNames))
    }

    /// A complete PNG file of the same picture at twice the size (1600×1000), for places that do
    /// not show SVG.
    public static func png(_ points: [PlotPoint], title: String, seriesNames: [String] = []) -> [UInt8] {
        let raster = Raster(layout: PlotLayout(points: points, title: title, seriesNames: seriesNames), scale: 2)
        return PNGEncoder.encode(width: raster.width, height: raster.height, rgb: raster.pixels)
    }
}

enum SVGWriter {
    static func render(_ layout: PlotLayout) -> String {
        let w = num(PlotLayout.width), h = num(PlotLayout.height)
        var out = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(w)" height="\(h)" viewBox="0 0 \(w) \(h)" \
        font-family="sans-serif">

        """
        for p in layout.primitives {
            out += element(p)
            out += "\n"
        }
        out += "</svg>\n"
        return out
    }

    private static func paint(fill: RGB?, stroke: RGB?, strokeWidth: Double) -> String {
        var s = " fill=\"\(fill?.hex ?? "none")\""
        if let stroke { s += " stroke=\"\(stroke.hex)\" stroke-width=\"\(num(strokeWidth))\"" }
        return s
    }

    private static func element(_ p: Primitive) -> String {
        switch p {
        case let .rect(r, fill, stroke, sw):
            return "<rect x=\"\(num(r.x))\" y=\"\(num(r.y))\" width=\"\(num(r.width))\" height=\"\(num(r.height))\""
                + paint(fill: fill, stroke: stroke, strokeWidth: sw) + "/>"
        case let .line(a, b, color, width):
            return "<line x1=\"\(num(a.x))\" y1=\"\(num(a.y))\" x2=\"\(num(b.x))\" y2=\"\(num(b.y))\""
                + " stroke=\"\(color.hex)\" stroke-width=\"\(num(width))\" stroke-linecap=\"square\"/>"
        case let .polyline(points, color, width):
            let list = points.map { "\(num($0.x)),\(num($0.y))" }.joined(separator: " ")
            return "<polyline points=\"\(list)\" fill=\"none\" stroke=\"\(color.hex)\" stroke-width=\"\(num(width))\""
                + " stroke-linejoin=\"round\"/>"
        case let .circle(c, radius, fill, stroke, sw):
            return "<circle cx=\"\(num(c.x))\" cy=\"\(num(c.y))\" r=\"\(num(radius))\""
                + paint(fill: fill, stroke: stroke, strokeWidth: sw) + "/>"
        case let .text(t):
            let anchor = switch t.anchor { case .start: "start"; case .middle: "middle"; case .end: "end" }
            var s = "<text x=\"\(num(t.at.x))\" y=\"\(num(t.at.y))\" font-size=\"\(num(t.size))\" fill=\"\(t.color.hex)\""
            if t.anchor != .start { s += " text-anchor=\"\(anchor)\"" }
            if t.bold { s += " font-weight=\"bold\"" }
            if t.vertical { s += " transform=\"rotate(-90 \(num(t.at.x)) \(num(t.at.y)))\"" }
            return s + ">" + escape(t.string) + "</text>"
        }
    }

    /// Two decimals at most: sub-pixel precision beyond that only bloats the file.
    static func num(_ v: Double) -> String {
        let r = (v * 100).rounded() / 100
        if r == r.rounded(), abs(r) < 1e9 { return String(Int(r)) }
        var s = String(format: "%.2f", r)
        while s.hasSuffix("0") { s.removeLast() }
        return s
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default:
                // Control characters are not allowed in XML 1.0 at all; drop them rather than emit a broken file.
                if let a = c.asciiValue, a < 32, a != 9, a != 10, a != 13 { continue }
                out.append(c)
            }
        }
        return out
    }
}
