#ifndef SWIFTRAIN_CCAIRO_SHIM_H
#define SWIFTRAIN_CCAIRO_SHIM_H
/* Cairo's C API (Debian's libcairo2-dev), imported by RainPlot/Canvas.swift alone. */
#include <cairo.h>
#endif
