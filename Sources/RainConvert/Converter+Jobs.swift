import Foundation
import RainSupport

#if canImport(Glibc)
import Glibc
#endif

/// Years in parallel: libnetcdf is not thread-safe, so each year is converted by a child process
/// (`swiftrain convert … --only-year Y`) writing its own rows of the shared data file with pwrite;
/// the parent alone records progress in the state file, so an interrupted run resumes as before.
extension Converter {
    func resultURL(_ year: Int) -> URL { directory.appendingPathComponent(".convert-year-\(year).json") }

    /// The child's side: converts `year` into the dataset the parent prepared and reports to it.
    public func runYear(_ year: Int) throws {
        let stateURL = directory.appendingPathComponent(".convert-state.json")
        guard let state = try ConversionState.load(stateURL), state.fingerprint == fingerprint() else {
            throw SwiftRainError(
                stateURL.path, "no conversion in progress with these settings",
                hint: "--only-year is for the processes `swiftrain convert` starts itself; run it without")
        }
        let path = directory.appendingPathComponent(plan.temporalFile).path
        let fd = open(path, O_RDWR)
        guard fd >= 0 else {
            throw SwiftRainError(
                path, "cannot open for writing", found: String(cString: strerror(errno)),
                hint: "check the permissions of --out")
        }
        defer { close(fd) }
        // A child outliving a killed parent would go on writing beside the re-run: leave with it.
        let parent = getppid()
        Thread.detachNewThread {
            while getppid() == parent { usleep(200_000) }
            _exit(3)
        }
        let r = try convertYear(year, fd: fd, path: path, origin: state.origin)
        try JSONEncoder().encode(r).write(to: resultURL(year), options: .atomic)
    }

    /// Keeps up to `jobs` children busy until every year is done. After a failure no new year starts,
    /// the years in flight finish and are kept, and the first failure is reported.
    func runInChildren(
        _ years: [Int], jobs: Int, spawn: (Int) throws -> Process, record: (YearResult) throws -> Void
    ) throws {
        var queue = years[...]
        var running: [(year: Int, process: Process)] = []
        var failure: Error?
        defer {
            for (_, p) in running where p.isRunning { p.terminate() }
            for (_, p) in running { p.waitUntilExit() }
        }
        while !running.isEmpty || (failure == nil && !queue.isEmpty) {
            while failure == nil && running.count < jobs, let year = queue.popFirst() {
                try? FileManager.default.removeItem(at: resultURL(year))
                running.append((year, try spawn(year)))
            }
            guard let i = running.firstIndex(where: { !$0.process.isRunning }) else {
                usleep(20_000)
                continue
            }
            let (year, p) = running.remove(at: i)
            let url = resultURL(year)
            if p.terminationStatus == 0, let data = try? Data(contentsOf: url),
                let r = try? JSONDecoder().decode(YearResult.self, from: data)
            {
                try? FileManager.default.removeItem(at: url)
                do { try record(r) } catch { failure = failure ?? error }
            } else if failure == nil {
                failure = SwiftRainError(
                    "\(plan.dataset) \(year)", "the process converting this year failed",
                    found: p.terminationReason == .uncaughtSignal
                        ? "killed by signal \(p.terminationStatus)" : "exit status \(p.terminationStatus)",
                    hint: "its error is printed above; fix it and re-run the same command (finished years are kept)")
            }
        }
        if let failure { throw failure }
    }
}
