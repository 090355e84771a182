/// Draws a plot layout into an 8-bit RGB pixel buffer. Lines and circles get coverage-based
/// anti-aliasing from the pixel centre's distance to the shape (cheap for a few hundred shapes);
/// text is the bitmap font at a whole number of device pixels per font pixel, so it stays crisp.
struct Raster {
    let width: Int
    let height: Int
    let scale: Double
    private(set) var pixels: [UInt8]

    init(layout: PlotLayout, scale: Double) {
        self.scale = scale
        width = Int((PlotLayout.width * scale).rounded())
        height = Int((PlotLayout.height * scale).rounded())
        pixels = [UInt8](repeating: 255, count: width * height * 3)
        for p in layout.primitives { draw(p) }
    }

    func pixel(x: Int, y: Int) -> RGB {
        let i = (y * width + x) * 3
        return RGB(pixels[i], pixels[i + 1], pixels[i + 2])
    }

    private mutating func blend(_ x: Int, _ y: Int, _ c: RGB, _ coverage: Double) {
        guard x >= 0, y >= 0, x < width, y < height, coverage > 0 else { return }
        let a = min(coverage, 1)
        let i = (y * width + x) * 3
        func mix(_ old: UInt8, _ new: UInt8) -> UInt8 {
            UInt8((Double(old) * (1 - a) + Double(new) * a).rounded())
        }
        pixels[i] = mix(pixels[i], c.r)
        pixels[i + 1] = mix(pixels[i + 1], c.g)
        pixels[i + 2] = mix(pixels[i + 2], c.b)
    }

    /// Calls `body` for every device pixel whose centre may lie within `reach` of the box.
    private func forPixels(minX: Double, minY: Double, maxX: Double, maxY: Double, reach: Double,
                           _ body: (Int, Int, Double, Double) -> Void) {
        let x0 = max(0, Int((minX - reach - 1).rounded(.down))), x1 = min(width - 1, Int((maxX + reach + 1).rounded(.up)))
        let y0 = max(0, Int((minY - reach - 1).rounded(.down))), y1 = min(height - 1, Int((maxY + reach + 1).rounded(.up)))
        guard x0 <= x1, y0 <= y1 else { return }
        for y in y0...y1 {
            for x in x0...x1 { body(x, y, Double(x) + 0.5, Double(y) + 0.5) }
        }
    }

    private mutating func draw(_ p: Primitive) {
        switch p {
        case let .rect(r, fill, stroke, sw):
            if let fill { fillRect(r.x * scale, r.y * scale, r.maxX * scale, r.maxY * scale, fill) }
            if let stroke {
                let corners = [Point(x: r.x, y: r.y), Point(x: r.maxX, y: r.y), Point(x: r.maxX, y: r.maxY), Point(x: r.x, y: r.maxY)]
                for k in 0..<4 { segment(corners[k], corners[(k + 1) % 4], stroke, sw) }
            }
        case let .line(a, b, color, width):
            segment(a, b, color, width)
        case let .polyline(points, color, width):
            // One coverage per pixel over the whole path, so joints are not blended twice.
            strokePath(points, color, width)
        case let .circle(c, radius, fill, stroke, sw):
            let cx = c.x * scale, cy = c.y * scale, r = radius * scale, half = (stroke == nil ? 0 : sw * scale / 2)
            var cover: [(Int, Int, Double, Double)] = []
            forPixels(minX: cx - r, minY: cy - r, maxX: cx + r, maxY: cy + r, reach: half) { x, y, px, py in
                let d = ((px - cx) * (px - cx) + (py - cy) * (py - cy)).squareRoot()
                cover.append((x, y, min(max(r + 0.5 - d, 0), 1), min(max(half + 0.5 - abs(d - r), 0), 1)))
            }
            for (x, y, inside, ring) in cover {
                if let fill { blend(x, y, fill, inside) }
                if let stroke, half > 0 { blend(x, y, stroke, ring) }
            }
        case let .text(t):
            drawText(t)
        }
    }

    private mutating func fillRect(_ x0: Double, _ y0: Double, _ x1: Double, _ y1: Double, _ c: RGB) {
        let ix0 = max(0, Int(x0.rounded())), ix1 = min(width, Int(x1.rounded()))
        let iy0 = max(0, Int(y0.rounded())), iy1 = min(height, Int(y1.rounded()))
        guard ix0 < ix1, iy0 < iy1 else { return }
        for y in iy0..<iy1 {
            for x in ix0..<ix1 { blend(x, y, c, 1) }
        }
    }

    private mutating func segment(_ a: Point, _ b: Point, _ c: RGB, _ lineWidth: Double) {
        strokePath([a, b], c, lineWidth)
    }

    private mutating func strokePath(_ points: [Point], _ c: RGB, _ lineWidth: Double) {
        guard points.count >= 2 else { return }
        let pts = points.map { Point(x: $0.x * scale, y: $0.y * scale) }
        let half = lineWidth * scale / 2
        var cover: [Int: Double] = [:]
        for k in 0..<(pts.count - 1) {
            let a = pts[k], b = pts[k + 1]
            let dx = b.x - a.x, dy = b.y - a.y, len2 = dx * dx + dy * dy
            forPixels(minX: min(a.x, b.x), minY: min(a.y, b.y), maxX: max(a.x, b.x), maxY: max(a.y, b.y), reach: half) { x, y, px, py in
                let t = len2 == 0 ? 0 : min(max(((px - a.x) * dx + (py - a.y) * dy) / len2, 0), 1)
                let qx = a.x + t * dx - px, qy = a.y + t * dy - py
                let v = min(max(half + 0.5 - (qx * qx + qy * qy).squareRoot(), 0), 1)
                if v > 0 { cover[y * self.width + x] = max(cover[y * self.width + x] ?? 0, v) }
            }
        }
        for (i, v) in cover { blend(i % width, i / width, c, v) }
    }

    private mutating func drawText(_ t: PlotText) {
        let u = Int((BitmapFont.unit(forSize: t.size) * scale).rounded())
        let chars = Array(t.string)
        let textWidth = (chars.count * BitmapFont.advance - 1) * u
        let start = switch t.anchor {
        case .start: 0
        case .middle: -textWidth / 2
        case .end: -textWidth
        }
        // Bold widens each stroke by a third of a font pixel, which keeps counters open.
        let extra = t.bold ? max(1, u / 3) : 0
        let ox = Int((t.at.x * scale).rounded()), oy = Int((t.at.y * scale).rounded())
        let top = -BitmapFont.rows * u
        for (n, ch) in chars.enumerated() {
            for (col, bits) in BitmapFont.glyph(ch).enumerated() {
                for row in 0..<(BitmapFont.rows + BitmapFont.descenderRows) where bits & (1 << row) != 0 {
                    // Glyph pixel in text coordinates: x along the baseline, y downwards.
                    let lx = start + (n * BitmapFont.advance + col) * u, ly = top + row * u
                    if t.vertical {
                        // A quarter turn counter-clockwise: along-text runs up the page.
                        fillDevice(ox + ly, oy - lx - u - extra, u, u + extra, t.color)
                    } else {
                        fillDevice(ox + lx, oy + ly, u + extra, u, t.color)
                    }
                }
            }
        }
    }

    private mutating func fillDevice(_ x: Int, _ y: Int, _ w: Int, _ h: Int, _ c: RGB) {
        let x0 = max(0, x), x1 = min(width, x + w), y0 = max(0, y), y1 = min(height, y + h)
        guard x0 < x1, y0 < y1 else { return }
        for yy in y0..<y1 {
            for xx in x0..<x1 { blend(xx, yy, c, 1) }
        }
    }
}
