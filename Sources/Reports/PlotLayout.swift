import Foundation

// The plot is laid out once as a list of drawing primitives in an 800×500 logical space; the SVG
// writer and the rasterizer both render that list, so the two files cannot drift apart.

struct RGB: Sendable, Equatable {
    var r: UInt8, g: UInt8, b: UInt8
    init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { self.r = r; self.g = g; self.b = b }
    var hex: String { "#" + [r, g, b].map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() }

    /// A fraction `t` of the way from this colour to `other`.
    func mixed(with other: RGB, _ t: Double) -> RGB {
        func mix(_ a: UInt8, _ b: UInt8) -> UInt8 { UInt8((Double(a) * (1 - t) + Double(b) * t).rounded()) }
        return RGB(mix(r, other.r), mix(g, other.g), mix(b, other.b))
    }
}

enum Palette {
    static let background = RGB(255, 255, 255)
    static let ink = RGB(0x21, 0x25, 0x29)
    static let axis = RGB(0x49, 0x50, 0x57)
    static let grid = RGB(0xE4, 0xE6, 0xE9)
    static let leader = RGB(0xAD, 0xB5, 0xBD)
    static let accent = RGB(0xD9, 0x48, 0x0F)
    static let dominated = RGB(0x6C, 0x75, 0x7D)
    /// Series colours when several series share the axes. The first is the accent, so a second
    /// series reads as an addition to the familiar one-series picture; blue next because orange
    /// against blue stays distinct under the common colour-vision deficiencies. Further series
    /// reuse the list, which is still better than refusing to draw them.
    static let series = [accent, RGB(0x19, 0x71, 0xC2), RGB(0x2F, 0x9E, 0x44), RGB(0x70, 0x48, 0xE8)]

    static func series(_ index: Int) -> RGB { series[index % series.count] }

    /// Fill for a multi-series point off its front: pale enough to read as "not recommended",
    /// still tinted so that it is clear which series it belongs to (grey would lose that).
    static func muted(_ c: RGB) -> RGB { c.mixed(with: background, 0.55) }
}

struct Point: Sendable, Equatable { var x: Double, y: Double }

struct Rect: Sendable, Equatable {
    var x: Double, y: Double, width: Double, height: Double
    var maxX: Double { x + width }
    var maxY: Double { y + height }

    func overlapArea(_ o: Rect) -> Double {
        max(0, min(maxX, o.maxX) - max(x, o.x)) * max(0, min(maxY, o.maxY) - max(y, o.y))
    }

    func insetBy(_ d: Double) -> Rect { Rect(x: x + d, y: y + d, width: width - 2 * d, height: height - 2 * d) }

    /// Moved (not resized) to lie inside `bounds` where it fits; labels stay whole instead of clipped.
    func clamped(to bounds: Rect) -> Rect {
        var r = self
        r.x = min(max(r.x, bounds.x), bounds.maxX - r.width)
        r.y = min(max(r.y, bounds.y), bounds.maxY - r.height)
        return r
    }

    func nearestPoint(to p: Point) -> Point {
        Point(x: min(max(p.x, x), maxX), y: min(max(p.y, y), maxY))
    }
}

enum TextAnchor: Sendable { case start, middle, end }

struct PlotText: Sendable {
    /// The anchor point on the baseline (for vertical text, in the rotated frame).
    var at: Point
    var string: String
    var size: Double
    var anchor: TextAnchor = .start
    var color: RGB = Palette.ink
    var bold = false
    /// Reads bottom to top, turned a quarter counter-clockwise about `at` (the y-axis title).
    var vertical = false
}

enum Primitive: Sendable {
    case rect(Rect, fill: RGB?, stroke: RGB?, strokeWidth: Double)
    case line(Point, Point, color: RGB, width: Double)
    case polyline([Point], color: RGB, width: Double)
    case circle(Point, radius: Double, fill: RGB?, stroke: RGB?, strokeWidth: Double)
    case text(PlotText)
}

struct PlotLayout: Sendable {
    static let width = 800.0
    static let height = 500.0
    static let outerPad = 12.0
    static let titleSize = 16.0
    static let axisTitleSize = 14.0
    static let textSize = 13.0
    static let markerRadius = 5.0

    struct Marker: Sendable {
        var label: String
        var center: Point
        var filled: Bool
        var onFront: Bool
        /// Always 0 in a one-series plot, whatever the point said.
        var series: Int
    }

    var primitives: [Primitive] = []
    /// Where each drawn point went and how, for tests that look at the rendered files.
    var markers: [Marker] = []
    var labelBoxes: [Rect] = []
    var plotArea = Rect(x: 0, y: 0, width: 0, height: 0)

    /// With two or more `seriesNames`, each point is drawn in its series' colour against its
    /// series' own front; with fewer, there is nothing to tell series apart by in the legend, so
    /// all points form one front as they did before series existed.
    init(points input: [PlotPoint], title: String, seriesNames: [String] = []) {
        let multi = seriesNames.count >= 2
        // A log axis cannot show zero (the reference itself) or a failed measurement; and a point
        // of a series with no name would have no legend entry to read it by.
        let points = input.filter {
            $0.kld.isFinite && $0.kld > 0 && $0.sizeBytes >= 0 && (!multi || seriesNames.indices.contains($0.series))
        }
        let xs = points.map { Double($0.sizeBytes) / 1e6 }
        let ys = points.map { log10($0.kld) }
        let seriesOf = points.map { multi ? $0.series : 0 }
        // Fronts per series: the comparison is between the best each kind of file offers, and a
        // series beaten everywhere by another would otherwise have no front to show at all.
        let members = (0..<(multi ? seriesNames.count : 1)).map { s in points.indices.filter { seriesOf[$0] == s } }
        var front = Set<Int>()
        for m in members {
            for k in Pareto.front(m.map { (x: Double(points[$0].sizeBytes), y: points[$0].kld) }) { front.insert(m[k]) }
        }

        let (xlo, xhi) = Self.xDomain(xs)
        let (ylo, yhi) = Self.yDomain(ys)
        let yTicks = Self.logTicks(ylo, yhi)

        // Margins follow from what sits in them: tick labels, axis titles, title and legend rows.
        let pad = Self.outerPad
        let tickLen = 5.0
        let tickM = TextMetrics("0", size: Self.textSize)
        let axisM = TextMetrics("M", size: Self.axisTitleSize)
        let titleM = TextMetrics("M", size: Self.titleSize)
        let titleBaseline = pad + titleM.ascent
        let legendBaseline = titleBaseline + titleM.descent + 10 + tickM.ascent
        let top = (legendBaseline + tickM.descent + 14).rounded()
        let yTickWidth = yTicks.map { TextMetrics($0.label, size: Self.textSize).width }.max() ?? 0
        let yTitleBaseline = pad + axisM.ascent
        let left = (yTitleBaseline + axisM.descent + 10 + yTickWidth + tickLen + 4).rounded()
        let xTickBaselineOffset = tickLen + 5 + tickM.ascent
        let xTitleOffset = xTickBaselineOffset + tickM.descent + 10 + axisM.ascent
        let bottom = (Self.height - (xTitleOffset + axisM.descent + pad)).rounded()
        // Tick labels centred on the last tick may hang past the plot's right edge; the first pass
        // with a guessed width picks the step, which fixes how wide those labels are.
        let guessWidth = Self.width - left - 40
        let xTicksGuess = Self.linearTicks(xlo, xhi, length: guessWidth)
        let xTickHalf = (xTicksGuess.map { TextMetrics($0.label, size: Self.textSize).width }.max() ?? 0) / 2
        let right = (Self.width - max(pad + 8, pad + xTickHalf)).rounded()
        let area = Rect(x: left, y: top, width: right - left, height: bottom - top)
        plotArea = area
        let xTicks = Self.linearTicks(xlo, xhi, length: area.width)

        func sx(_ v: Double) -> Double { area.x + (v - xlo) / (xhi - xlo) * area.width }
        func sy(_ logv: Double) -> Double { area.maxY - (logv - ylo) / (yhi - ylo) * area.height }

        primitives.append(.rect(Rect(x: 0, y: 0, width: Self.width, height: Self.height),
                                fill: Palette.background, stroke: nil, strokeWidth: 0))

        // Grid and ticks.
        for t in xTicks {
            let x = sx(t.value).rounded()
            primitives.append(.line(Point(x: x, y: area.y), Point(x: x, y: area.maxY), color: Palette.grid, width: 1))
            primitives.append(.line(Point(x: x, y: area.maxY), Point(x: x, y: area.maxY + tickLen), color: Palette.axis, width: 1))
            primitives.append(.text(PlotText(at: Point(x: x, y: area.maxY + xTickBaselineOffset), string: t.label,
                                             size: Self.textSize, anchor: .middle)))
        }
        for t in yTicks {
            let y = sy(t.value).rounded()
            primitives.append(.line(Point(x: area.x, y: y), Point(x: area.maxX, y: y), color: Palette.grid, width: 1))
            primitives.append(.line(Point(x: area.x - tickLen, y: y), Point(x: area.x, y: y), color: Palette.axis, width: 1))
            // Baseline placed so the digits' middle meets the tick.
            primitives.append(.text(PlotText(at: Point(x: area.x - tickLen - 4, y: y + tickM.ascent / 2), string: t.label,
                                             size: Self.textSize, anchor: .end)))
        }
        primitives.append(.line(Point(x: area.x, y: area.y), Point(x: area.x, y: area.maxY), color: Palette.axis, width: 1))
        primitives.append(.line(Point(x: area.x, y: area.maxY), Point(x: area.maxX, y: area.maxY), color: Palette.axis, width: 1))

        primitives.append(.text(PlotText(at: Point(x: area.x + area.width / 2, y: area.maxY + xTitleOffset),
                                         string: "File size (MB)", size: Self.axisTitleSize, anchor: .middle)))
        primitives.append(.text(PlotText(at: Point(x: yTitleBaseline, y: area.y + area.height / 2),
                                         string: "Mean KL divergence (log scale)", size: Self.axisTitleSize,
                                         anchor: .middle, vertical: true)))

        // Title, shortened rather than clipped when it is longer than the picture is wide.
        var shownTitle = title
        while shownTitle.count > 1, TextMetrics(shownTitle, size: Self.titleSize).width > Self.width - 2 * pad {
            shownTitle = String(shownTitle.dropLast(shownTitle.hasSuffix("...") ? 4 : 1)) + "..."
        }
        let titleWidth = TextMetrics(shownTitle, size: Self.titleSize).width
        let titleX = min(max(area.x + area.width / 2, pad + titleWidth / 2), Self.width - pad - titleWidth / 2)
        primitives.append(.text(PlotText(at: Point(x: titleX, y: titleBaseline), string: shownTitle,
                                         size: Self.titleSize, anchor: .middle, bold: true)))
        var legend: [LegendEntry]
        if multi {
            legend = seriesNames.enumerated().map { LegendEntry(text: $1, symbol: .front(Palette.series($0))) }
            // Entries for kinds of point the picture does not have would only crowd out the names.
            if points.indices.contains(where: { !front.contains($0) }) {
                legend.append(LegendEntry(text: "dominated", symbol: .marker(fill: Palette.muted(Palette.dominated),
                                                                            stroke: Palette.dominated, width: 1)))
            }
            if points.contains(where: \.simulated) {
                legend.append(LegendEntry(text: "simulated", symbol: .marker(fill: Palette.background,
                                                                            stroke: Palette.dominated, width: 2)))
            }
        } else {
            legend = [
                LegendEntry(text: "Pareto front", symbol: .front(Palette.accent)),
                LegendEntry(text: "dominated", symbol: .marker(fill: Palette.dominated, stroke: Palette.dominated, width: 1)),
                LegendEntry(text: "simulated", symbol: .marker(fill: Palette.background, stroke: Palette.dominated, width: 2)),
            ]
        }
        appendLegend(legend, left: pad, right: area.maxX, baseline: legendBaseline, capHeight: tickM.ascent)

        if points.isEmpty {
            primitives.append(.text(PlotText(at: Point(x: area.x + area.width / 2, y: area.y + area.height / 2),
                                             string: "no measured points", size: Self.textSize, anchor: .middle,
                                             color: Palette.dominated)))
            return
        }

        let centers = zip(xs, ys).map { Point(x: sx($0), y: sy($1)) }

        // The front as a staircase: at any size budget between two front types, the best one can
        // do is the smaller type's quality, so straight segments between them would promise too much.
        var lineBoxes: [Rect] = []
        // Every front before any marker, so that no series' line runs over another's markers.
        for (s, m) in members.enumerated() {
            let frontOrder = m.filter(front.contains).sorted { (xs[$0], ys[$0]) < (xs[$1], ys[$1]) }
            guard frontOrder.count > 1 else { continue }
            var path = [centers[frontOrder[0]]]
            for i in frontOrder.dropFirst() {
                path.append(Point(x: centers[i].x, y: path[path.count - 1].y))
                path.append(centers[i])
            }
            primitives.append(.polyline(path, color: Palette.series(s), width: 2))
            // Text struck through by the front is hard to read, so labels treat it as an obstacle
            // (the staircase is axis-aligned: segment bounds are the segments).
            for k in 0..<(path.count - 1) {
                let a = path[k], b = path[k + 1]
                lineBoxes.append(Rect(x: min(a.x, b.x) - 2, y: min(a.y, b.y) - 2,
                                      width: abs(a.x - b.x) + 4, height: abs(a.y - b.y) + 4))
            }
        }

        for (i, p) in points.enumerated() {
            let onFront = front.contains(i)
            let colour = Palette.series(seriesOf[i])
            let fill: RGB, stroke: RGB
            if onFront {
                (fill, stroke) = (p.simulated ? Palette.background : colour, colour)
            } else if multi {
                // Off-front points keep their series' hue (muted) so they can still be told apart.
                let muted = Palette.muted(colour)
                (fill, stroke) = p.simulated ? (Palette.background, muted) : (muted, colour)
            } else {
                (fill, stroke) = (p.simulated ? Palette.background : Palette.dominated, Palette.dominated)
            }
            let label = p.simulated ? p.label + " (simulated)" : p.label
            markers.append(Marker(label: label, center: centers[i], filled: !p.simulated, onFront: onFront, series: seriesOf[i]))
            primitives.append(.circle(centers[i], radius: Self.markerRadius, fill: fill, stroke: stroke,
                                      strokeWidth: p.simulated ? 2 : 1))
        }
        placeLabels(area: area, obstacles: lineBoxes)
    }

    /// Greedy placement: each label takes the first spot around its marker that hits no marker, no
    /// obstacle and no label placed before it; when every spot collides, the one with least overlap. Spots are
    /// clamped into the plot area, so a label near an edge slides inward instead of being clipped.
    private mutating func placeLabels(area: Rect, obstacles: [Rect]) {
        let r = Self.markerRadius
        let blocked = obstacles + markers.map { Rect(x: $0.center.x - r - 2, y: $0.center.y - r - 2, width: 2 * r + 4, height: 2 * r + 4) }
        let bounds = area.insetBy(2)
        // Left to right, then top to bottom: neighbours in size are the ones that compete for room.
        let order = markers.indices.sorted { (markers[$0].center.x, markers[$0].center.y) < (markers[$1].center.x, markers[$1].center.y) }
        var boxes = [Rect?](repeating: nil, count: markers.count)
        for i in order {
            let c = markers[i].center
            let m = TextMetrics(markers[i].label, size: Self.textSize)
            let w = m.width + 4, h = m.height + 2
            let gap = r + 4
            var spots = [
                Rect(x: c.x + gap, y: c.y - h / 2, width: w, height: h),          // right
                Rect(x: c.x - gap - w, y: c.y - h / 2, width: w, height: h),      // left
                Rect(x: c.x - w / 2, y: c.y - gap - h, width: w, height: h),      // above
                Rect(x: c.x - w / 2, y: c.y + gap, width: w, height: h),          // below
                Rect(x: c.x + r, y: c.y - r - h, width: w, height: h),            // above right
                Rect(x: c.x + r, y: c.y + r, width: w, height: h),                // below right
                Rect(x: c.x - r - w, y: c.y - r - h, width: w, height: h),        // above left
                Rect(x: c.x - r - w, y: c.y + r, width: w, height: h),            // below left
            ]
            // Then further out, sideways and up or down, joined to the marker by a leader line.
            for k in 1...4 {
                let dy = Double(k) * h * 0.8
                for sign in [-1.0, 1.0] {
                    spots.append(Rect(x: c.x + gap, y: c.y - h / 2 + sign * dy, width: w, height: h))
                    spots.append(Rect(x: c.x - gap - w, y: c.y - h / 2 + sign * dy, width: w, height: h))
                }
            }
            var best: (box: Rect, cost: Double)?
            for spot in spots {
                let box = spot.clamped(to: bounds)
                let cost = blocked.reduce(0) { $0 + box.overlapArea($1) }
                    + boxes.reduce(0) { $0 + ($1.map { box.overlapArea($0) } ?? 0) }
                if best == nil || cost < best!.cost { best = (box, cost) }
                if cost == 0 { break }
            }
            boxes[i] = best!.box
        }
        for (i, box) in boxes.enumerated() {
            guard let box else { continue }
            labelBoxes.append(box)
            let c = markers[i].center
            let near = box.nearestPoint(to: c)
            let dist = ((near.x - c.x) * (near.x - c.x) + (near.y - c.y) * (near.y - c.y)).squareRoot()
            if dist > r + 7 {
                let f = (r + 1) / dist
                primitives.append(.line(Point(x: c.x + (near.x - c.x) * f, y: c.y + (near.y - c.y) * f), near,
                                        color: Palette.leader, width: 1))
            }
            let m = TextMetrics(markers[i].label, size: Self.textSize)
            primitives.append(.text(PlotText(at: Point(x: box.x + 2, y: box.y + 1 + m.ascent), string: markers[i].label,
                                             size: Self.textSize)))
        }
    }

    struct LegendEntry: Sendable {
        enum Symbol: Sendable {
            /// A short stretch of front with a marker on it.
            case front(RGB)
            case marker(fill: RGB, stroke: RGB, width: Double)
        }
        var text: String
        var symbol: Symbol
        var symbolWidth: Double {
            switch symbol {
            case .front: 24
            case .marker: 2 * PlotLayout.markerRadius + 2
            }
        }
    }

    /// One row, right-aligned at `right`. Series names come from the caller and can be long, so
    /// the longest is shortened until the row fits between `left` and `right` rather than running
    /// off the picture.
    private mutating func appendLegend(_ entries: [LegendEntry], left: Double, right: Double, baseline: Double,
                                       capHeight: Double) {
        let mid = baseline - capHeight / 2
        let r = Self.markerRadius
        let gap = 6.0, spacing = 18.0
        var items = entries
        func total() -> Double {
            items.reduce(0) { $0 + $1.symbolWidth + gap + TextMetrics($1.text, size: Self.textSize).width }
                + spacing * Double(items.count - 1)
        }
        while total() > right - left {
            let names = items.indices.filter { if case .front = items[$0].symbol { items[$0].text.count > 4 } else { false } }
            guard let k = names.max(by: { items[$0].text.count < items[$1].text.count }) else { break }
            let t = items[k].text
            items[k].text = String(t.dropLast(t.hasSuffix("...") ? 4 : 1)) + "..."
        }
        var x = right - total()
        for item in items {
            let sym = Point(x: x + item.symbolWidth / 2, y: mid)
            switch item.symbol {
            case let .front(colour):
                primitives.append(.line(Point(x: x, y: mid), Point(x: x + item.symbolWidth, y: mid), color: colour, width: 2))
                primitives.append(.circle(sym, radius: r, fill: colour, stroke: colour, strokeWidth: 1))
            case let .marker(fill, stroke, width):
                primitives.append(.circle(sym, radius: r, fill: fill, stroke: stroke, strokeWidth: width))
            }
            x += item.symbolWidth + gap
            primitives.append(.text(PlotText(at: Point(x: x, y: baseline), string: item.text, size: Self.textSize)))
            x += TextMetrics(item.text, size: Self.textSize).width + spacing
        }
    }

    // MARK: Axes

    /// Data range in MB with a margin so markers at the ends are not cut by the axes.
    static func xDomain(_ xs: [Double]) -> (Double, Double) {
        guard let lo = xs.min(), let hi = xs.max() else { return (0, 100) }
        let span = hi > lo ? hi - lo : max(abs(lo) * 0.2, 1)
        let padded = (lo - span * 0.08, hi + span * 0.08)
        return (lo >= 0 ? max(0, padded.0) : padded.0, padded.1)
    }

    /// Range in log10 units. At least a factor of 4, so that 1-2-5 ticks always land inside and
    /// near-identical values do not spread across the whole height as if they differed a lot.
    static func yDomain(_ ys: [Double]) -> (Double, Double) {
        guard var lo = ys.min(), var hi = ys.max() else { return (-3, 0) }
        let minSpan = log10(4.0)
        if hi - lo < minSpan {
            let mid = (lo + hi) / 2
            lo = mid - minSpan / 2; hi = mid + minSpan / 2
        }
        let pad = (hi - lo) * 0.08
        return (lo - pad, hi + pad)
    }

    struct Tick: Sendable { var value: Double; var label: String }

    /// 1, 2 or 5 × 10^k steps, widened until the labels have room between them.
    static func linearTicks(_ lo: Double, _ hi: Double, length: Double) -> [Tick] {
        var step = niceStep((hi - lo) / 6)
        while true {
            let first = (lo / step - 1e-9).rounded(.up), last = (hi / step + 1e-9).rounded(.down)
            let decimals = max(0, Int((-log10(step) - 1e-9).rounded(.up)))
            var ticks: [Tick] = []
            if first <= last {
                for k in stride(from: first, through: last, by: 1) {
                    let v = k * step
                    ticks.append(Tick(value: v, label: String(format: "%.\(decimals)f", v == 0 ? 0 : v)))
                }
            }
            let widest = ticks.map { TextMetrics($0.label, size: textSize).width }.max() ?? 0
            if Double(ticks.count) * (widest + 14) <= length || ticks.count <= 2 { return ticks }
            step = niceStep(step * 1.5, atLeast: true)
        }
    }

    /// The 1, 2 or 5 × 10^k nearest `raw` (on a log scale), or with `atLeast` the smallest not below it.
    static func niceStep(_ raw: Double, atLeast: Bool = false) -> Double {
        guard raw > 0, raw.isFinite else { return 1 }
        let mag = pow(10, (log10(raw)).rounded(.down))
        let n = raw / mag
        if atLeast { return (n <= 1 + 1e-9 ? 1 : n <= 2 + 1e-9 ? 2 : n <= 5 + 1e-9 ? 5 : 10) * mag }
        return (n < 1.41 ? 1 : n < 3.16 ? 2 : n < 7.07 ? 5 : 10) * mag
    }

    /// Ticks for a log axis over [lo, hi] in log10 units: decades when there are several, else
    /// 1-2-5 steps (a one- or two-decade range shows two decade ticks at most, too few to read
    /// values off), else every integer multiple.
    static func logTicks(_ lo: Double, _ hi: Double) -> [Tick] {
        func ticks(_ mantissas: [Int]) -> [Tick] {
            var out: [Tick] = []
            for k in Int(lo.rounded(.down))...Int(hi.rounded(.up)) {
                for m in mantissas {
                    let v = log10(Double(m)) + Double(k)
                    if v >= lo - 1e-9 && v <= hi + 1e-9 { out.append(Tick(value: v, label: logLabel(m, k))) }
                }
            }
            return out
        }
        var decades = ticks([1])
        let fine = ticks([1, 2, 5])
        if decades.count >= 4 || fine.count > 9 {
            let every = (decades.count + 7) / 8
            if every > 1 { decades = decades.enumerated().filter { $0.offset % every == 0 }.map(\.element) }
            return decades
        }
        if fine.count >= 3 { return fine }
        return ticks(Array(1...9))
    }

    /// m × 10^k as plain decimals where that stays short, else in e-notation.
    static func logLabel(_ m: Int, _ k: Int) -> String {
        if k >= 0 && k <= 5 { return String(m) + String(repeating: "0", count: k) }
        if k < 0 && k >= -4 { return "0." + String(repeating: "0", count: -k - 1) + String(m) }
        return "\(m)e\(k)"
    }
}
