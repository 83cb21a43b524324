#ifndef SWIFTRAIN_CNETCDF_SHIM_H
#define SWIFTRAIN_CNETCDF_SHIM_H
/* libnetcdf's C API (Debian's libnetcdf-dev), imported by RainNetCDF/NetCDFFile.swift alone. */
#include <netcdf.h>
#endif
