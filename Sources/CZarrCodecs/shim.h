#ifndef SWIFTRAIN_CZARRCODECS_SHIM_H
#define SWIFTRAIN_CZARRCODECS_SHIM_H
/* Zarr's compressors from Debian (libblosc-dev, libzstd-dev, zlib1g-dev), imported by RainZarr/ZarrCodec.swift alone. */
#include <blosc.h>
#include <zstd.h>
#include <zlib.h>
#endif
