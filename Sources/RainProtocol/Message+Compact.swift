import Foundation

/// The per-step messages (a step to every worker, a result from every one) are what the coordinator's
/// traffic grows with as N grows, so their bodies carry short keys and leave out every field at its
/// default: a typical step is ~60 bytes of JSON, a result ~90.
extension Body.Step {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            epoch: try c.decodeIfPresent(Int.self, forKey: .epoch) ?? 0, step: try c.decode(Int.self, forKey: .step),
            samples: try c.decodeIfPresent([Int].self, forKey: .samples) ?? [],
            globalBatch: try c.decodeIfPresent(Int.self, forKey: .globalBatch) ?? 0,
            shard: try c.decodeIfPresent(Int.self, forKey: .shard) ?? 0,
            ring: try c.decodeIfPresent([String].self, forKey: .ring),
            position: try c.decodeIfPresent(Int.self, forKey: .position) ?? 0,
            round: try c.decodeIfPresent(Int.self, forKey: .round) ?? 0)
        hosts = try c.decodeIfPresent([Int].self, forKey: .hosts)
        ringKeys = try c.decodeIfPresent([String].self, forKey: .ringKeys)
        lr = try c.decodeIfPresent(Double.self, forKey: .lr) ?? 0
        adamStep = try c.decodeIfPresent(Int.self, forKey: .adamStep) ?? 0
        commit = try c.decodeIfPresent(Int.self, forKey: .commit)
        load = try c.decodeIfPresent(String.self, forKey: .load)
        seq = try c.decodeIfPresent(Int.self, forKey: .seq)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(step, forKey: .step)
        if epoch != 0 { try c.encode(epoch, forKey: .epoch) }
        if !samples.isEmpty { try c.encode(samples, forKey: .samples) }
        if globalBatch != 0 { try c.encode(globalBatch, forKey: .globalBatch) }
        if shard != 0 { try c.encode(shard, forKey: .shard) }
        try c.encodeIfPresent(ring, forKey: .ring)
        try c.encodeIfPresent(hosts, forKey: .hosts)
        try c.encodeIfPresent(ringKeys, forKey: .ringKeys)
        if position != 0 { try c.encode(position, forKey: .position) }
        if round != 0 { try c.encode(round, forKey: .round) }
        if lr != 0 { try c.encode(lr, forKey: .lr) }
        if adamStep != 0 { try c.encode(adamStep, forKey: .adamStep) }
        try c.encodeIfPresent(commit, forKey: .commit)
        try c.encodeIfPresent(load, forKey: .load)
        try c.encodeIfPresent(seq, forKey: .seq)
    }
}

extension Body.Result {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            step: try c.decodeIfPresent(Int.self, forKey: .step) ?? 0,
            shard: try c.decodeIfPresent(Int.self, forKey: .shard) ?? 0,
            count: try c.decodeIfPresent(Int.self, forKey: .count) ?? 0,
            lossSum: try c.decodeIfPresent(Double.self, forKey: .lossSum) ?? 0,
            leadSquaredError: try c.decodeIfPresent([Double].self, forKey: .leadSquaredError) ?? [],
            leadWeight: try c.decodeIfPresent([Double].self, forKey: .leadWeight) ?? [])
        ringFailed = try c.decodeIfPresent(Bool.self, forKey: .ringFailed) ?? false
        ringError = try c.decodeIfPresent(String.self, forKey: .ringError)
        round = try c.decodeIfPresent(Int.self, forKey: .round) ?? 0
        computeSeconds = try c.decodeIfPresent(Double.self, forKey: .computeSeconds) ?? 0
        nonFinite = try c.decodeIfPresent(Bool.self, forKey: .nonFinite) ?? false
        paramsChecksum = try c.decodeIfPresent(UInt32.self, forKey: .paramsChecksum)
        ringBytes = try c.decodeIfPresent(Int.self, forKey: .ringBytes) ?? 0
        seq = try c.decodeIfPresent(Int.self, forKey: .seq)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        if step != 0 { try c.encode(step, forKey: .step) }
        if shard != 0 { try c.encode(shard, forKey: .shard) }
        if ringFailed { try c.encode(true, forKey: .ringFailed) }
        try c.encodeIfPresent(ringError, forKey: .ringError)
        if round != 0 { try c.encode(round, forKey: .round) }
        // Microseconds are plenty for a duration, and half the digits of a full Double.
        if computeSeconds != 0 { try c.encode((computeSeconds * 1e6).rounded() / 1e6, forKey: .computeSeconds) }
        if nonFinite { try c.encode(true, forKey: .nonFinite) }
        try c.encodeIfPresent(paramsChecksum, forKey: .paramsChecksum)
        if ringBytes != 0 { try c.encode(ringBytes, forKey: .ringBytes) }
        if count != 0 { try c.encode(count, forKey: .count) }
        if lossSum != 0 { try c.encode(lossSum, forKey: .lossSum) }
        if !leadSquaredError.isEmpty { try c.encode(leadSquaredError, forKey: .leadSquaredError) }
        if !leadWeight.isEmpty { try c.encode(leadWeight, forKey: .leadWeight) }
        try c.encodeIfPresent(seq, forKey: .seq)
    }
}
