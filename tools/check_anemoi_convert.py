"""Holds `swiftrain convert anemoi`'s output to the NetCDF files the anemoi dataset was made from.

    python tools/check_anemoi_convert.py FIXTURE_DIR DATASET_DIR

FIXTURE_DIR is tools/anemoi_fixture.py's (sfc.nc, pl.nc, era.zarr); DATASET_DIR the converted era5625.
Every converted row must equal xarray's reading of the NetCDF input at that time, turned into RainBench's
orientation here (latitudes ascending, longitudes from 0°), bit for bit; the dataset's missing date and
the year's rows outside its dates must be NaN; the constants must be lsm, z / g and slt; and
normalisation.json must hold anemoi's own statistics (anemoi.datasets.open_dataset). Prints DIFFERENT
lines for mismatches.
"""
import json
import sys
from pathlib import Path

import numpy as np
import xarray as xr
from anemoi.datasets import open_dataset

G = 9.80665
# anemoi's names → RainBench's: the mapping the conversion promises (README, convert anemoi --help).
NAMES = {"2t": "t2m", "sp": "sp", "tp": "tp6h", "10u": "10u"}
for v in ["ciwc", "clwc", "t", "z", "q"]:
    for p in [300, 500, 850]:
        NAMES[f"{v}_{p}"] = f"{v}_{p}hPa"


def rainbench(a):
    """A (…, lat, lon) DataArray in RainBench's orientation: latitudes ascending, longitudes from 0°."""
    a = a.sortby("latitude")
    a = a.assign_coords(longitude=(a.longitude % 360)).sortby("longitude")
    return a.values.astype(np.float32)


def main():
    fixtures, out = Path(sys.argv[1]), Path(sys.argv[2])
    bad = 0

    def differ(what, got, want):
        nonlocal bad
        same = np.array_equal(got, want, equal_nan=True)
        if not same:
            bad += 1
            n = int(np.sum(~((got == want) | (np.isnan(got) & np.isnan(want)))))
            print(f"DIFFERENT {what}: {n} values")
        return same

    info = json.loads((out / "era5625_info.json").read_text())
    mm = info["memmap"]["era5625__era5625.mmap"]
    rows, channels, h, w = mm["dims"]
    data = np.memmap(out / "era5625__era5625.mmap", dtype=np.float32, mode="r", shape=(rows, channels, h, w))
    origin = np.datetime64(int(mm["daterange"][0]), "s")
    step = np.timedelta64(int(mm["tfreq_s"]), "s")
    offset = {k.split("/", 1)[1]: v["offset"] for k, v in info["variables"].items()
              if v["mmap_name"] == "era5625__era5625.mmap"}
    ds = open_dataset(fixtures / "era.zarr")
    assert step == np.timedelta64(6, "h"), step
    sfc = xr.open_dataset(fixtures / "sfc.nc")
    pl = xr.open_dataset(fixtures / "pl.nc")
    missing = {ds.dates[i] for i in ds.missing}
    dates = ds.dates
    row = ((dates - origin) // step).astype(int)
    assert set(offset) == set(NAMES.values()), sorted(offset)
    for name, ours in NAMES.items():
        v, _, p = name.partition("_")
        src = pl[v].sel(level=int(p)) if p else sfc[name]
        want = rainbench(src.sel(time=dates))
        for i, d in enumerate(dates):
            if d in missing:
                want[i] = np.nan
        got = np.asarray(data[row, offset[ours]])
        differ(f"{ours} (from {name})", got, want)
        others = np.setdiff1d(np.arange(rows), row)
        if not np.isnan(np.asarray(data[others, offset[ours]])).all():
            print(f"DIFFERENT {ours}: rows outside the dataset's dates are not NaN")
            bad += 1
    print(f"{len(NAMES)} channels × {len(dates)} dates checked; missing {sorted(str(m) for m in missing)} NaN")

    const = info["memmap"]["era5625__era5625_const.mmap"]["dims"]
    cdata = np.fromfile(out / "era5625__era5625_const.mmap", dtype=np.float32).reshape(const)
    coff = {k.split("/", 1)[1]: v["offset"] for k, v in info["variables"].items()
            if v["mmap_name"] == "era5625__era5625_const.mmap"}
    first = rainbench(sfc[["lsm", "z", "slt"]].isel(time=0).to_array())
    differ("lsm", cdata[coff["lsm"]], first[0])
    differ("slt", cdata[coff["slt"]], first[2])
    oro = (first[1].astype(np.float64) / G).astype(np.float32)
    if not np.allclose(cdata[coff["orography"]], oro, rtol=1e-6, atol=0):
        print("DIFFERENT orography: not z / g")
        bad += 1
    lat = np.arange(-90 + 5.625 / 2, 90, 5.625)
    differ("lat2d", cdata[coff["lat2d"]], np.repeat(lat[:, None], w, 1).astype(np.float32))
    differ("lon2d", cdata[coff["lon2d"]], np.repeat((np.arange(w) * 5.625)[None], h, 0).astype(np.float32))

    norm = json.loads((out / "normalisation.json").read_text())
    stats = ds.statistics
    for i, name in enumerate(ds.variables):
        key = "era5625/" + {"lsm": "lsm", "slt": "slt", "z": "orography"}.get(name, NAMES.get(name, name))
        factor = 1 / G if name == "z" else 1
        want = (stats["mean"][i] * factor, stats["stdev"][i] * factor)
        got = (norm[key]["mean"], norm[key]["std"])
        if not np.allclose(got, want, rtol=1e-12, atol=0):
            print(f"DIFFERENT {key}: normalisation {got}, anemoi's statistics {want}")
            bad += 1
    print(f"normalisation: {len(norm)} entries, anemoi's statistics for {len(ds.variables)} variables")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
