import CZlib
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
@testable import Reports
import Testing

/// A SmolLM2-135M-like compare run; q4_0, iq4_nl and nf4 are nearly the same size, which is what
/// makes label placement hard.
let samplePoints: [PlotPoint] = [
    PlotPoint(label: "f16", sizeBytes: 271_000_000, kld: 0),
    PlotPoint(label: "q8_0", sizeBytes: 145_000_000, kld: 0.0043),
    PlotPoint(label: "q6_k", sizeBytes: 138_000_000, kld: 0.012),
    PlotPoint(label: "q5_k_m", sizeBytes: 120_000_000, kld: 0.030),
    PlotPoint(label: "q4_k_m", sizeBytes: 105_000_000, kld: 0.063),
    PlotPoint(label: "q4_0", sizeBytes: 92_000_000, kld: 0.341),
    PlotPoint(label: "iq4_nl", sizeBytes: 92_200_000, kld: 0.11),
    PlotPoint(label: "nf4", sizeBytes: 92_100_000, kld: 0.13, simulated: true),
]
let sampleTitle = "SmolLM2-135M: size vs quality"

@Suite struct ParetoTests {
    @Test func dominatedPointsAreExcludedAndTiesKept() {
        let points: [(x: Double, y: Double)] = [
            (1, 5),   // 0 front: smallest but one
            (2, 3),   // 1 front
            (3, 3),   // 2 dominated by 1 (same y, larger x)
            (2, 4),   // 3 dominated by 1 (same x, larger y)
            (4, 1),   // 4 front
            (4, 1),   // 5 exact duplicate of 4: neither is better, both stay
            (5, 2),   // 6 dominated by 4
            (0.5, 10), // 7 front: smallest of all
        ]
        #expect(Pareto.front(points) == [0, 1, 4, 5, 7])
    }

    @Test func edgeCases() {
        #expect(Pareto.front([]).isEmpty)
        #expect(Pareto.front([(x: 3, y: 3)]) == [0])
        // A chain where each point is better on one axis only: all on the front.
        #expect(Pareto.front([(x: 1, y: 3), (x: 2, y: 2), (x: 3, y: 1)]) == [0, 1, 2])
    }
}

@Suite struct SVGPlotTests {
    /// Text content of the document's <text> elements, as an XML parser sees it (entities decoded).
    final class TextCollector: NSObject, XMLParserDelegate {
        var texts: [String] = []
        var fontSizes: [Double] = []
        var elements = 0
        private var current: String?
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?,
                    qualifiedName: String?, attributes: [String: String] = [:]) {
            elements += 1
            if let s = attributes["font-size"], let v = Double(s) { fontSizes.append(v) }
            if name == "text" { current = "" }
        }
        func parser(_ parser: XMLParser, foundCharacters string: String) { current? += string }
        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            if name == "text", let c = current { texts.append(c); current = nil }
        }
    }

    func parse(_ svg: String) throws -> TextCollector {
        let parser = XMLParser(data: Data(svg.utf8))
        let collector = TextCollector()
        parser.delegate = collector
        let ok = parser.parse()
        #expect(ok, "not well-formed XML: \(String(describing: parser.parserError))")
        return collector
    }

    @Test func sampleHasLabelsAxesAndTicks() throws {
        let svg = SizeQualityPlot.svg(samplePoints, title: sampleTitle)
        let doc = try parse(svg)
        let texts = Set(doc.texts)
        for label in ["q8_0", "q6_k", "q5_k_m", "q4_k_m", "q4_0", "iq4_nl", "nf4 (simulated)"] {
            #expect(texts.contains(label), "missing label \(label)")
        }
        // kld 0 cannot sit on a log axis.
        #expect(!texts.contains("f16"))
        #expect(texts.contains("File size (MB)"))
        #expect(texts.contains("Mean KL divergence (log scale)"))
        #expect(texts.contains(sampleTitle))
        #expect(texts.contains("Pareto front") && texts.contains("simulated"))
        // 1-2-5 ticks over the 0.004…0.34 range, 10 MB steps over 92…145 MB.
        for tick in ["0.005", "0.01", "0.02", "0.05", "0.1", "0.2", "100", "120", "140"] {
            #expect(texts.contains(tick), "missing tick \(tick)")
        }
        #expect(doc.fontSizes.count >= texts.count && doc.fontSizes.allSatisfy { $0 >= 12 })
        #expect(svg.contains("viewBox=\"0 0 800 500\"") && svg.contains("font-family=\"sans-serif\""))
        #expect(svg.contains("<rect x=\"0\" y=\"0\" width=\"800\" height=\"500\" fill=\"#ffffff\"/>"))
        // One hollow marker (nf4), accent-filled front markers.
        #expect(svg.components(separatedBy: "<circle").count - 1 == 7 + 3) // points + legend
        #expect(svg.contains("<polyline"))
    }

    @Test func specialCharactersAreEscaped() throws {
        let points = [PlotPoint(label: "a<b&\"c\"", sizeBytes: 1_000_000, kld: 0.5)]
        let svg = SizeQualityPlot.svg(points, title: "x < y & 'z'")
        #expect(svg.contains("a&lt;b&amp;&quot;c&quot;"))
        let doc = try parse(svg)
        #expect(doc.texts.contains("a<b&\"c\""))
        #expect(doc.texts.contains("x < y & 'z'"))
    }

    @Test func oneDecadeGetsIntermediateTicks() throws {
        let points = [
            PlotPoint(label: "a", sizeBytes: 4_100_000_000, kld: 0.021),
            PlotPoint(label: "b", sizeBytes: 3_200_000_000, kld: 0.08),
        ]
        let texts = Set(try parse(SizeQualityPlot.svg(points, title: "t")).texts)
        // Only 0.05 of 1-2-5 lies strictly inside, so every multiple is ticked.
        for tick in ["0.02", "0.03", "0.05", "0.08"] { #expect(texts.contains(tick), "missing tick \(tick)") }
        // And many decades get decade ticks only.
        let wide = PlotLayout.logTicks(log10(1e-5), log10(2.0)).map(\.label)
        #expect(wide == ["1e-5", "0.0001", "0.001", "0.01", "0.1", "1"])
    }

    @Test func unplottablePointsAreSkipped() throws {
        let points = [
            PlotPoint(label: "zero", sizeBytes: 10, kld: 0),
            PlotPoint(label: "nan", sizeBytes: 10, kld: .nan),
            PlotPoint(label: "inf", sizeBytes: 10, kld: .infinity),
            PlotPoint(label: "neg", sizeBytes: 10, kld: -1),
        ]
        let texts = try parse(SizeQualityPlot.svg(points, title: "t")).texts
        #expect(texts.contains("no measured points"))
        #expect(!texts.contains { ["zero", "nan", "inf", "neg"].contains($0) })
    }

    @Test func labelsAvoidEachOtherMarkersAndEdges() {
        let layout = PlotLayout(points: samplePoints, title: sampleTitle)
        #expect(layout.labelBoxes.count == 7)
        let r = PlotLayout.markerRadius
        for (i, a) in layout.labelBoxes.enumerated() {
            #expect(a.x >= layout.plotArea.x && a.maxX <= layout.plotArea.maxX)
            #expect(a.y >= layout.plotArea.y && a.maxY <= layout.plotArea.maxY)
            for b in layout.labelBoxes[(i + 1)...] { #expect(a.overlapArea(b) == 0) }
            for m in layout.markers {
                let box = Rect(x: m.center.x - r, y: m.center.y - r, width: 2 * r, height: 2 * r)
                #expect(a.overlapArea(box) == 0, "label box \(a) covers marker \(m.label)")
            }
        }
    }
}

@Suite struct PNGPlotTests {
    struct Chunk { var type: String; var data: [UInt8]; var crc: UInt32 }

    static func be32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
    }

    /// CRC-32 (ISO-HDLC) computed here rather than with zlib, so a mistake in how the encoder
    /// calls zlib cannot cancel out.
    static func crc(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0xEDB8_8320 : c >> 1 }
        }
        return ~c
    }

    static func chunks(_ png: [UInt8]) -> [Chunk] {
        var out: [Chunk] = []
        var at = 8
        while at + 12 <= png.count {
            let len = Int(be32(png, at))
            let type = String(decoding: png[(at + 4)..<(at + 8)], as: UTF8.self)
            let data = Array(png[(at + 8)..<(at + 8 + len)])
            out.append(Chunk(type: type, data: data, crc: be32(png, at + 8 + len)))
            at += 12 + len
        }
        #expect(at == png.count, "trailing bytes after the last chunk")
        return out
    }

    @Test func pngIsValidAndShowsTheMarkers() throws {
        let png = SizeQualityPlot.png(samplePoints, title: sampleTitle)
        #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        let chunks = Self.chunks(png)
        #expect(chunks.map(\.type) == ["IHDR", "IDAT", "IEND"])
        for c in chunks { #expect(c.crc == Self.crc(Array(c.type.utf8) + c.data), "bad CRC in \(c.type)") }

        let ihdr = chunks[0].data
        let width = Int(Self.be32(ihdr, 0)), height = Int(Self.be32(ihdr, 4))
        #expect(width == 1600 && height == 1000)
        #expect(Array(ihdr[8...]) == [8, 2, 0, 0, 0])

        let expected = height * (1 + 3 * width)
        var raw = [UInt8](repeating: 0, count: expected + 16)
        var rawLen = uLongf(raw.count)
        let idat = chunks[1].data
        let status = raw.withUnsafeMutableBufferPointer { dst in
            idat.withUnsafeBufferPointer { uncompress(dst.baseAddress, &rawLen, $0.baseAddress, uLong($0.count)) }
        }
        try #require(status == Z_OK)
        try #require(Int(rawLen) == expected)

        func pixel(_ x: Int, _ y: Int) -> [UInt8] {
            let at = y * (1 + 3 * width) + 1 + 3 * x
            return Array(raw[at..<(at + 3)])
        }
        #expect((0..<height).allSatisfy { raw[$0 * (1 + 3 * width)] == 0 }, "every scanline uses filter 0")
        #expect(pixel(0, 0) == [255, 255, 255] && pixel(width - 1, height - 1) == [255, 255, 255])

        let layout = PlotLayout(points: samplePoints, title: sampleTitle)
        let filled = layout.markers.filter(\.filled)
        #expect(filled.count == 6)
        for m in filled {
            let p = pixel(Int(m.center.x * 2), Int(m.center.y * 2))
            #expect(p != [255, 255, 255], "nothing drawn under \(m.label)")
            // Front markers are the accent colour.
            if m.onFront { #expect(p == [Palette.accent.r, Palette.accent.g, Palette.accent.b]) }
        }
        // The hollow marker is hollow: background in the middle, ink on the ring.
        let hollow = try #require(layout.markers.first { !$0.filled })
        let cx = Int(hollow.center.x * 2), cy = Int(hollow.center.y * 2)
        #expect(pixel(cx, cy) == [255, 255, 255])
        #expect(pixel(cx + Int(PlotLayout.markerRadius * 2), cy) != [255, 255, 255])
    }
}

/// Planned mixes against llama-quantize's file types: the `compare --budgets` picture.
let seriesNames = ["edgequant planned mixes", "llama-quantize file types"]
let twoSeriesPoints: [PlotPoint] = [
    PlotPoint(label: "3.0 bpw", sizeBytes: 70_000_000, kld: 0.40),
    PlotPoint(label: "3.5 bpw", sizeBytes: 80_000_000, kld: 0.21),
    PlotPoint(label: "4.0 bpw", sizeBytes: 90_000_000, kld: 0.09),
    PlotPoint(label: "5.0 bpw", sizeBytes: 112_000_000, kld: 0.10),         // dominated by 4.0 bpw
    // Worse than 3.5 bpw on both axes, yet on its own series' front: fronts do not compete.
    PlotPoint(label: "Q3_K_S", sizeBytes: 85_000_000, kld: 0.5, series: 1),
    PlotPoint(label: "Q3_K_M", sizeBytes: 95_000_000, kld: 0.3, series: 1),
    PlotPoint(label: "Q4_0", sizeBytes: 105_000_000, kld: 0.35, series: 1),  // dominated by Q3_K_M
    PlotPoint(label: "Q5_K_M", sizeBytes: 120_000_000, kld: 0.05, series: 1),
]

@Suite struct MultiSeriesPlotTests {
    /// The value of `name="…"` in each element of `svg` that starts with `<tag`.
    func attribute(_ name: String, of tag: String, in svg: String) -> [String] {
        svg.split(separator: "\n").filter { $0.hasPrefix("<\(tag) ") }.compactMap { line in
            guard let start = line.range(of: " \(name)=\"") else { return nil }
            return String(line[start.upperBound...].prefix { $0 != "\"" })
        }
    }

    @Test func eachSeriesHasItsOwnFrontAndColour() throws {
        let layout = PlotLayout(points: twoSeriesPoints, title: "t", seriesNames: seriesNames)
        #expect(layout.markers.map(\.series) == [0, 0, 0, 0, 1, 1, 1, 1])
        #expect(layout.markers.map(\.onFront) == [true, true, true, false, true, true, false, true])

        let fronts = layout.primitives.compactMap { p -> (points: [Point], color: RGB)? in
            if case let .polyline(points, color, _) = p { return (points, color) }
            return nil
        }
        try #require(fronts.count == 2)
        #expect(fronts.map(\.color) == [Palette.accent, Palette.series(1)])
        #expect(Palette.series(1) != Palette.accent)
        for (s, front) in fronts.enumerated() {
            let onFront = layout.markers.filter { $0.series == s && $0.onFront }.map(\.center)
            // A staircase: a corner between each pair of front markers, and it passes through each.
            #expect(front.points.count == 2 * onFront.count - 1)
            for c in onFront { #expect(front.points.contains(c), "series \(s) front misses \(c)") }
            for k in 0..<(front.points.count - 1) {
                let a = front.points[k], b = front.points[k + 1]
                #expect(a.x == b.x || a.y == b.y, "diagonal front segment")
            }
        }

        let svg = SizeQualityPlot.svg(twoSeriesPoints, title: "t", seriesNames: seriesNames)
        #expect(attribute("stroke", of: "polyline", in: svg) == [Palette.accent.hex, Palette.series(1).hex])
        let fills = attribute("fill", of: "circle", in: svg)
        // Three front markers per series, plus its legend marker.
        #expect(fills.filter { $0 == Palette.accent.hex }.count == 4)
        #expect(fills.filter { $0 == Palette.series(1).hex }.count == 4)
        // Off-front points keep a (muted) series colour rather than all turning the same grey.
        #expect(fills.filter { $0 == Palette.muted(Palette.accent).hex }.count == 1)
        #expect(fills.filter { $0 == Palette.muted(Palette.series(1)).hex }.count == 1)
        #expect(!fills.contains(Palette.dominated.hex))
    }

    @Test func legendNamesTheSeries() throws {
        let doc = try SVGPlotTests().parse(SizeQualityPlot.svg(twoSeriesPoints, title: "t", seriesNames: seriesNames))
        let texts = Set(doc.texts)
        for name in seriesNames { #expect(texts.contains(name), "legend misses \(name)") }
        #expect(!texts.contains("Pareto front"))
        #expect(texts.contains("dominated"))
        // No simulated point, so no entry for one.
        #expect(!texts.contains("simulated"))
        for p in twoSeriesPoints { #expect(texts.contains(p.label), "missing label \(p.label)") }

        var withSimulated = twoSeriesPoints
        withSimulated[5].simulated = true
        let simTexts = try SVGPlotTests().parse(SizeQualityPlot.svg(withSimulated, title: "t", seriesNames: seriesNames)).texts
        #expect(simTexts.contains("simulated") && simTexts.contains("Q3_K_M (simulated)"))
    }

    @Test func longSeriesNamesAreShortenedToFit() throws {
        let long = [String(repeating: "planned mix ", count: 6), String(repeating: "file type ", count: 7)]
        let layout = PlotLayout(points: twoSeriesPoints, title: "t", seriesNames: long)
        var legendTexts: [String] = []
        for p in layout.primitives {
            switch p {
            case let .text(t) where t.anchor == .start:
                #expect(t.at.x >= PlotLayout.outerPad)
                #expect(t.at.x + TextMetrics(t.string, size: t.size).width <= PlotLayout.width - PlotLayout.outerPad)
                if t.string.hasSuffix("...") { legendTexts.append(t.string) }
            case let .circle(c, radius, _, _, _):
                #expect(c.x - radius >= PlotLayout.outerPad)
            case let .line(a, b, _, _):
                #expect(min(a.x, b.x) >= PlotLayout.outerPad)
            default:
                break
            }
        }
        #expect(legendTexts.count == 2)
        for (shown, full) in zip(legendTexts, long) { #expect(full.hasPrefix(String(shown.dropLast(3)))) }
    }

    @Test func pointsOfUnnamedSeriesAreLeftOut() throws {
        let extra = [
            PlotPoint(label: "stray", sizeBytes: 100_000_000, kld: 0.2, series: 2),
            PlotPoint(label: "negative", sizeBytes: 100_000_000, kld: 0.2, series: -1),
        ]
        let layout = PlotLayout(points: twoSeriesPoints + extra, title: "t", seriesNames: seriesNames)
        #expect(layout.markers.count == twoSeriesPoints.count)
        #expect(!layout.markers.contains { ["stray", "negative"].contains($0.label) })
        // Three names, three colours, three fronts.
        let three = PlotLayout(points: twoSeriesPoints + extra, title: "t", seriesNames: seriesNames + ["third"])
        #expect(three.markers.count == twoSeriesPoints.count + 1)
        let colours = three.primitives.compactMap { p -> RGB? in
            if case let .polyline(_, color, _) = p { return color }
            return nil
        }
        // A lone point has no staircase to draw.
        #expect(colours == [Palette.series(0), Palette.series(1)])
        #expect(Set([Palette.series(0).hex, Palette.series(1).hex, Palette.series(2).hex]).count == 3)
    }

    @Test func fewerThanTwoNamesIsTheOneSeriesPlot() {
        // Series numbers without names to tell them apart by are ignored: one front over everything.
        let plain = twoSeriesPoints.map { PlotPoint(label: $0.label, sizeBytes: $0.sizeBytes, kld: $0.kld, simulated: $0.simulated) }
        let reference = SizeQualityPlot.svg(plain, title: "t")
        #expect(SizeQualityPlot.svg(twoSeriesPoints, title: "t") == reference)
        #expect(SizeQualityPlot.svg(twoSeriesPoints, title: "t", seriesNames: ["only"]) == reference)
        #expect(SizeQualityPlot.png(twoSeriesPoints, title: "t", seriesNames: ["only"]) == SizeQualityPlot.png(plain, title: "t"))
        #expect(reference.contains(">Pareto front<") && !reference.contains(">only<"))
        #expect(SizeQualityPlot.svg(samplePoints, title: sampleTitle, seriesNames: []) == SizeQualityPlot.svg(samplePoints, title: sampleTitle))
        // And it is really one front: 3.0, 3.5 and 4.0 bpw dominate Q3_K_S and Q3_K_M here.
        let layout = PlotLayout(points: twoSeriesPoints, title: "t", seriesNames: ["only"])
        #expect(layout.markers.map(\.onFront) == [true, true, true, false, false, false, false, true])
        #expect(layout.markers.allSatisfy { $0.series == 0 })
    }

    @Test func pngShowsBothSeries() throws {
        let png = SizeQualityPlot.png(twoSeriesPoints, title: "t", seriesNames: seriesNames)
        let chunks = PNGPlotTests.chunks(png)
        try #require(chunks.map(\.type) == ["IHDR", "IDAT", "IEND"])
        for c in chunks { #expect(c.crc == PNGPlotTests.crc(Array(c.type.utf8) + c.data), "bad CRC in \(c.type)") }
        let width = Int(PNGPlotTests.be32(chunks[0].data, 0)), height = Int(PNGPlotTests.be32(chunks[0].data, 4))
        #expect(width == 1600 && height == 1000)

        let expected = height * (1 + 3 * width)
        var raw = [UInt8](repeating: 0, count: expected + 16)
        var rawLen = uLongf(raw.count)
        let idat = chunks[1].data
        let status = raw.withUnsafeMutableBufferPointer { dst in
            idat.withUnsafeBufferPointer { uncompress(dst.baseAddress, &rawLen, $0.baseAddress, uLong($0.count)) }
        }
        try #require(status == Z_OK && Int(rawLen) == expected)
        func pixel(_ p: Point) -> RGB {
            let at = Int(p.y * 2) * (1 + 3 * width) + 1 + 3 * Int(p.x * 2)
            return RGB(raw[at], raw[at + 1], raw[at + 2])
        }

        let layout = PlotLayout(points: twoSeriesPoints, title: "t", seriesNames: seriesNames)
        for m in layout.markers {
            let colour = Palette.series(m.series)
            #expect(pixel(m.center) == (m.onFront ? colour : Palette.muted(colour)), "marker \(m.label)")
        }
    }
}
