/// An RGB raster for figures: rectangles, lines, text in a 5×7 bitmap font, colour maps.
public struct Canvas {
    public typealias RGB = (UInt8, UInt8, UInt8)
    public let width: Int, height: Int
    public private(set) var pixels: [UInt8]

    public init(width: Int, height: Int, background: RGB = (255, 255, 255)) {
        self.width = width
        self.height = height
        pixels = [UInt8](repeating: 0, count: width * height * 3)
        fill(x: 0, y: 0, w: width, h: height, background)
    }

    public mutating func set(_ x: Int, _ y: Int, _ c: RGB) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let i = (y * width + x) * 3
        pixels[i] = c.0
        pixels[i + 1] = c.1
        pixels[i + 2] = c.2
    }

    public mutating func fill(x: Int, y: Int, w: Int, h: Int, _ c: RGB) {
        let x0 = max(0, x), x1 = min(width, x + w), y0 = max(0, y), y1 = min(height, y + h)
        guard x0 < x1, y0 < y1 else { return }  // entirely off the canvas
        for yy in y0..<y1 { for xx in x0..<x1 { set(xx, yy, c) } }
    }

    /// A line `thickness` pixels wide (Bresenham, square pen).
    public mutating func line(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, _ c: RGB, thickness: Int = 1) {
        var x = x0, y = y0
        let dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
        var err = dx + dy
        while true {
            fill(x: x - thickness / 2, y: y - thickness / 2, w: thickness, h: thickness, c)
            if x == x1 && y == y1 { break }
            let e2 = 2 * err
            if e2 >= dy {
                err += dy
                x += sx
            }
            if e2 <= dx {
                err += dx
                y += sy
            }
        }
    }

    public mutating func rectangle(x: Int, y: Int, w: Int, h: Int, _ c: RGB) {
        line(x, y, x + w - 1, y, c)
        line(x, y + h - 1, x + w - 1, y + h - 1, c)
        line(x, y, x, y + h - 1, c)
        line(x + w - 1, y, x + w - 1, y + h - 1, c)
    }

    /// Pixel width of `text` at `scale`.
    public static func textWidth(_ text: String, scale: Int = 2) -> Int { max(0, text.count * 6 * scale - scale) }

    /// Draws `text` with its top-left corner at (x, y); `anchor` 0 = left, 0.5 = centred, 1 = right.
    public mutating func text(_ text: String, x: Int, y: Int, scale: Int = 2, anchor: Double = 0, _ c: RGB = (0, 0, 0))
    {
        var cx = x - Int(Double(Self.textWidth(text, scale: scale)) * anchor)
        for ch in text.uppercased() {
            if let rows = Font.glyphs[ch] {
                for (r, bits) in rows.enumerated() {
                    for col in 0..<5 where bits & (1 << (4 - col)) != 0 {
                        fill(x: cx + col * scale, y: y + r * scale, w: scale, h: scale, c)
                    }
                }
            }
            cx += 6 * scale
        }
    }

    /// Text rotated a quarter turn anticlockwise (a y-axis label), centred on (x, y).
    public mutating func verticalText(_ text: String, x: Int, y: Int, scale: Int = 2, _ c: RGB = (0, 0, 0)) {
        var sub = Canvas(width: Self.textWidth(text, scale: scale), height: 7 * scale, background: (255, 255, 255))
        sub.text(text, x: 0, y: 0, scale: scale, c)
        for sy in 0..<sub.height {
            for sx in 0..<sub.width {
                let i = (sy * sub.width + sx) * 3
                if sub.pixels[i] != 255 || sub.pixels[i + 1] != 255 {
                    set(x - sub.height / 2 + sy, y + sub.width / 2 - sx, c)
                }
            }
        }
    }

    /// A perceptually ordered colour map for precipitation: white → light blue → blue → purple → dark red.
    public static func rainColour(_ v: Double) -> RGB {
        let stops: [(Double, Double, Double, Double)] = [
            (0, 255, 255, 255), (0.15, 198, 219, 239), (0.35, 107, 174, 214),
            (0.55, 33, 113, 181), (0.75, 106, 81, 163), (1, 103, 0, 13),
        ]
        let t = min(1, max(0, v.isFinite ? v : 0))
        for i in 1..<stops.count where t <= stops[i].0 {
            let (a, b) = (stops[i - 1], stops[i]), f = (t - a.0) / (b.0 - a.0)
            return (UInt8(a.1 + (b.1 - a.1) * f), UInt8(a.2 + (b.2 - a.2) * f), UInt8(a.3 + (b.3 - a.3) * f))
        }
        return (103, 0, 13)
    }
}

/// A classic 5×7 bitmap font: each glyph is 7 rows of 5 bits (most significant bit leftmost).
enum Font {
    static let glyphs: [Character: [UInt8]] = {
        let table: [(Character, [UInt8])] = [
            ("0", [14, 17, 19, 21, 25, 17, 14]), ("1", [4, 12, 4, 4, 4, 4, 14]), ("2", [14, 17, 1, 2, 4, 8, 31]),
            ("3", [31, 2, 4, 2, 1, 17, 14]), ("4", [2, 6, 10, 18, 31, 2, 2]), ("5", [31, 16, 30, 1, 1, 17, 14]),
            ("6", [6, 8, 16, 30, 17, 17, 14]), ("7", [31, 1, 2, 4, 8, 8, 8]), ("8", [14, 17, 17, 14, 17, 17, 14]),
            ("9", [14, 17, 17, 15, 1, 2, 12]),
            ("A", [14, 17, 17, 31, 17, 17, 17]), ("B", [30, 17, 17, 30, 17, 17, 30]),
            ("C", [14, 17, 16, 16, 16, 17, 14]),
            ("D", [28, 18, 17, 17, 17, 18, 28]), ("E", [31, 16, 16, 30, 16, 16, 31]),
            ("F", [31, 16, 16, 30, 16, 16, 16]),
            ("G", [14, 17, 16, 23, 17, 17, 15]), ("H", [17, 17, 17, 31, 17, 17, 17]), ("I", [14, 4, 4, 4, 4, 4, 14]),
            ("J", [7, 2, 2, 2, 2, 18, 12]), ("K", [17, 18, 20, 24, 20, 18, 17]), ("L", [16, 16, 16, 16, 16, 16, 31]),
            ("M", [17, 27, 21, 21, 17, 17, 17]), ("N", [17, 17, 25, 21, 19, 17, 17]),
            ("O", [14, 17, 17, 17, 17, 17, 14]),
            ("P", [30, 17, 17, 30, 16, 16, 16]), ("Q", [14, 17, 17, 17, 21, 18, 13]),
            ("R", [30, 17, 17, 30, 20, 18, 17]),
            ("S", [15, 16, 16, 14, 1, 1, 30]), ("T", [31, 4, 4, 4, 4, 4, 4]), ("U", [17, 17, 17, 17, 17, 17, 14]),
            ("V", [17, 17, 17, 17, 17, 10, 4]), ("W", [17, 17, 17, 21, 21, 21, 10]),
            ("X", [17, 17, 10, 4, 10, 17, 17]),
            ("Y", [17, 17, 17, 10, 4, 4, 4]), ("Z", [31, 1, 2, 4, 8, 16, 31]),
            (".", [0, 0, 0, 0, 0, 12, 12]), (",", [0, 0, 0, 0, 12, 4, 8]), (":", [0, 12, 12, 0, 12, 12, 0]),
            ("-", [0, 0, 0, 31, 0, 0, 0]), ("+", [0, 4, 4, 31, 4, 4, 0]), ("/", [0, 1, 2, 4, 8, 16, 0]),
            ("(", [2, 4, 8, 8, 8, 4, 2]), (")", [8, 4, 2, 2, 2, 4, 8]), ("%", [24, 25, 2, 4, 8, 19, 3]),
            ("°", [12, 18, 18, 12, 0, 0, 0]), ("=", [0, 0, 31, 0, 31, 0, 0]), ("_", [0, 0, 0, 0, 0, 0, 31]),
            ("'", [4, 4, 8, 0, 0, 0, 0]), ("×", [0, 17, 10, 4, 10, 17, 0]), ("·", [0, 0, 0, 12, 12, 0, 0]),
        ]
        return Dictionary(uniqueKeysWithValues: table)
    }()
}
