"""Holds `swiftrain convert anemoi` of a 1.40625° dataset to its NetCDF sources, at its own grid and averaged
onto 5.625° (`--grid 5.625`).

    python tools/check_anemoi_fine.py FINE_DIR OUT_140625 OUT_5625

FINE_DIR is tools/anemoi_fixture.py's fine/ (sfc.nc, pl.nc, fine.zarr). At 1.40625° every row of t2m and
t_850hPa must equal the NetCDF input in RainBench's orientation bit for bit; at 5.625° each cell must be the
first-order conservative (area-weighted) mean of the fine cells it covers, computed here independently: a
coarse cell spans 4 fine rows (weights ∝ the rows' sin-latitude bands) and 5 fine columns (the outer two
half inside, since RainBench's 5.625° cells are centred on 0° E). Prints DIFFERENT lines for mismatches.
"""
import json
import sys
from pathlib import Path

import numpy as np
import xarray as xr


def rainbench(a):
    a = a.sortby("latitude")
    return a.assign_coords(longitude=(a.longitude % 360)).sortby("longitude").values


def dataset(out):
    name = Path(out).name
    info = json.loads((Path(out) / f"{name}_info.json").read_text())
    rows, c, h, w = info["memmap"][f"{name}__{name}.mmap"]["dims"]
    data = np.memmap(Path(out) / f"{name}__{name}.mmap", dtype=np.float32, mode="r", shape=(rows, c, h, w))
    return data, {k.split("/", 1)[1]: v["offset"] for k, v in info["variables"].items()}


def main():
    fine, out14, out5 = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    sfc, pl = xr.open_dataset(fine / "sfc.nc"), xr.open_dataset(fine / "pl.nc")
    sources = {"t2m": sfc["2t"], "t_850hPa": pl["t"].sel(level=850)}
    d14, o14 = dataset(out14)
    d5, o5 = dataset(out5)
    lat = np.sort(sfc.latitude.values)
    band = np.sin(np.deg2rad(lat + 1.40625 / 2)) - np.sin(np.deg2rad(lat - 1.40625 / 2))
    edge = np.array([0.5, 1, 1, 1, 0.5])
    bad = 0
    for name, src in sources.items():
        for t in range(src.sizes["time"]):
            field = rainbench(src.isel(time=t))
            if not np.array_equal(d14[t, o14[name]], field.astype(np.float32)):
                print(f"DIFFERENT {name} at 1.40625°, time {t}")
                bad += 1
            f = field.astype(np.float64)
            ref = np.empty((32, 64))
            for i in range(32):
                for j in range(64):
                    cols = [(4 * j + k) % 256 for k in range(-2, 3)]
                    weights = band[4 * i:4 * i + 4, None] * edge[None, :]
                    ref[i, j] = (f[4 * i:4 * i + 4][:, cols] * weights).sum() / weights.sum()
            got = d5[t, o5[name]].astype(np.float64)
            worst = np.max(np.abs(got - ref) / np.abs(ref))
            if not worst < 1e-6:
                print(f"DIFFERENT {name} at 5.625°, time {t}: {worst:.2e} relative from the area-weighted mean")
                bad += 1
    print(f"{len(sources)} variables × {sfc.sizes['time']} times: 1.40625° bit for bit, 5.625° area-weighted")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
