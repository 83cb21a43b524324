#ifndef SWIFTRAIN_CPNG_SHIM_H
#define SWIFTRAIN_CPNG_SHIM_H
#include <png.h>
#include <string.h>

/* libpng's simplified API (no setjmp/longjmp, which Swift cannot cross): writes an 8-bit RGB image.
   Returns 1 on success; on failure copies libpng's message into `message`. */
static inline int swiftrain_png_write_rgb(const char *path, unsigned width, unsigned height,
                                          const unsigned char *rgb, char *message, size_t length) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = width;
    image.height = height;
    image.format = PNG_FORMAT_RGB;
    int ok = png_image_write_to_file(&image, path, 0, rgb, 0, NULL);
    if (!ok && length > 0) { strncpy(message, image.message, length - 1); message[length - 1] = 0; }
    png_image_free(&image);
    return ok;
}
#endif
