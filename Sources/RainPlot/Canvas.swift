import CCairo
import Foundation
import RainSupport

/// An RGB image drawn with Cairo: anti-aliased lines and TrueType text (DejaVu Sans, through
/// fontconfig), written as PNG by Cairo itself. Coordinates are pixels from the top left; this class
/// owns the surface and the drawing context and frees both.
public final class Canvas {
    public typealias RGB = (UInt8, UInt8, UInt8)
    public let width: Int, height: Int
    let surface: OpaquePointer
    let cr: OpaquePointer
    /// The font family asked of fontconfig (fonts-dejavu-core provides it).
    public static let fontFamily = "DejaVu Sans"

    /// A white canvas.
    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
        surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, Int32(width), Int32(height))
        cr = cairo_create(surface)
        cairo_set_source_rgb(cr, 1, 1, 1)
        cairo_paint(cr)
        cairo_select_font_face(cr, Self.fontFamily, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL)
    }
    deinit {
        cairo_destroy(cr)
        cairo_surface_destroy(surface)
    }

    private func colour(_ c: RGB) { cairo_set_source_rgb(cr, Double(c.0) / 255, Double(c.1) / 255, Double(c.2) / 255) }

    /// A filled rectangle; `crisp` snaps it to whole pixels (map cells meet without anti-aliased seams).
    public func fill(x: Double, y: Double, w: Double, h: Double, _ c: RGB, crisp: Bool = false) {
        colour(c)
        if crisp {
            let (x0, y0) = (x.rounded(), y.rounded())
            cairo_rectangle(cr, x0, y0, (x + w).rounded() - x0, (y + h).rounded() - y0)
            cairo_set_antialias(cr, CAIRO_ANTIALIAS_NONE)
            cairo_fill(cr)
            cairo_set_antialias(cr, CAIRO_ANTIALIAS_DEFAULT)
        } else {
            cairo_rectangle(cr, x, y, w, h)
            cairo_fill(cr)
        }
    }

    /// A straight line through the given points.
    public func polyline(_ points: [(Double, Double)], _ c: RGB, width: Double = 1) {
        guard let first = points.first else { return }
        colour(c)
        cairo_set_line_width(cr, width)
        cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND)
        cairo_move_to(cr, first.0, first.1)
        for p in points.dropFirst() { cairo_line_to(cr, p.0, p.1) }
        cairo_stroke(cr)
    }

    public func line(_ x0: Double, _ y0: Double, _ x1: Double, _ y1: Double, _ c: RGB, width: Double = 1) {
        polyline([(x0, y0), (x1, y1)], c, width: width)
    }

    /// Separate segments (a contour), stroked as one path.
    public func segments(_ segs: [((Double, Double), (Double, Double))], _ c: RGB, width: Double = 1) {
        colour(c)
        cairo_set_line_width(cr, width)
        cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND)
        for (a, b) in segs {
            cairo_move_to(cr, a.0, a.1)
            cairo_line_to(cr, b.0, b.1)
        }
        cairo_stroke(cr)
        cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT)
    }

    /// A rectangle's outline, its edges centred on the half pixel so a 1-pixel line is sharp.
    public func rectangle(x: Double, y: Double, w: Double, h: Double, _ c: RGB, width: Double = 1) {
        colour(c)
        cairo_set_line_width(cr, width)
        cairo_rectangle(cr, x.rounded() + 0.5, y.rounded() + 0.5, w.rounded() - 1, h.rounded() - 1)
        cairo_stroke(cr)
    }

    /// Draws inside the rectangle only.
    public func clipped(x: Double, y: Double, w: Double, h: Double, _ body: () -> Void) {
        cairo_save(cr)
        cairo_rectangle(cr, x, y, w, h)
        cairo_clip(cr)
        body()
        cairo_restore(cr)
    }

    /// The advance width of `text` at `size` points.
    public func textWidth(_ text: String, size: Double = 13, bold: Bool = false) -> Double {
        font(size, bold)
        var e = cairo_text_extents_t()
        cairo_text_extents(cr, text, &e)
        return e.x_advance
    }

    private func font(_ size: Double, _ bold: Bool) {
        cairo_select_font_face(
            cr, Self.fontFamily, CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL)
        cairo_set_font_size(cr, size)
    }

    /// `text` with its top at `y`; `anchor` places x at its left (0), centre (0.5) or right (1) end;
    /// `vertical` turns it 90° anticlockwise about (x, y) (an axis label).
    public func text(
        _ text: String, x: Double, y: Double, size: Double = 13, anchor: Double = 0, bold: Bool = false,
        vertical: Bool = false, _ c: RGB = (0, 0, 0)
    ) {
        font(size, bold)
        var fe = cairo_font_extents_t()
        cairo_font_extents(cr, &fe)
        let w = textWidth(text, size: size, bold: bold)
        colour(c)
        cairo_save(cr)
        cairo_translate(cr, x, y)
        if vertical { cairo_rotate(cr, -Double.pi / 2) }
        cairo_move_to(cr, -anchor * w, fe.ascent)
        cairo_show_text(cr, text)
        cairo_restore(cr)
    }

    /// The image as 8-bit RGB rows (tests look at pixels).
    public var pixels: [UInt8] {
        cairo_surface_flush(surface)
        let stride = Int(cairo_image_surface_get_stride(surface))
        guard let data = cairo_image_surface_get_data(surface) else { return [] }
        var out = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                // RGB24: one native-endian 32-bit word per pixel, 0x00RRGGBB.
                let word = UnsafeRawPointer(data + y * stride + 4 * x).load(as: UInt32.self)
                out[3 * (y * width + x)] = UInt8((word >> 16) & 0xFF)
                out[3 * (y * width + x) + 1] = UInt8((word >> 8) & 0xFF)
                out[3 * (y * width + x) + 2] = UInt8(word & 0xFF)
            }
        }
        return out
    }

    /// Writes the image as PNG (atomically: into `path`.partial, then renamed).
    public func writePNG(path: String) throws {
        cairo_surface_flush(surface)
        let partial = path + ".partial"
        let status = cairo_surface_write_to_png(surface, partial)
        guard status == CAIRO_STATUS_SUCCESS else {
            throw SwiftRainError(
                path, "cannot write the figure", found: String(cString: cairo_status_to_string(status)),
                hint: "check that the directory is writable and the disk has room")
        }
        guard rename(partial, path) == 0 else {
            throw SwiftRainError(
                path, "cannot write the figure", found: String(cString: strerror(errno)),
                hint: "check that the directory is writable")
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
