// The only file that imports CDNNL: oneDNN's matmul primitive as a bf16 GEMM backend.
import CDNNL
import Foundation

/// bf16 GEMMs through oneDNN's matmul primitive (brgemm: AVX512_BF16, and AMX tiles where the CPU has them),
/// behind the same interface as SwiftRain's own kernels: C = beta·C + op(A)·op(B), bf16 operands, fp32 sums.
///
/// Each call runs on the calling thread alone (oneDNN's OpenMP team is set to one thread per caller), so a
/// product is computed whole by one thread, as with SwiftRain's kernels: the bits do not depend on how many
/// threads share the products. Primitives are created once per form and shape (a few milliseconds each)
/// and kept; each thread keeps its own stream, memory objects and scratchpad (oneDNN's own scratchpad is
/// shared by all threads unless the library was built for concurrent execution, and Debian's is not: with it,
/// two threads running primitives at once corrupted each other's sums) and only points them at the operands.
public enum OneDNN {
    /// A product's form and shape: what a primitive is made for.
    public struct Form: Hashable, Sendable {
        public var transA: Bool, transB: Bool
        public var m: Int, n: Int, k: Int, lda: Int, ldb: Int, ldc: Int
        /// beta = 1 (C += A·B) rather than 0.
        public var accumulate: Bool
        public init(
            transA: Bool, transB: Bool, m: Int, n: Int, k: Int, lda: Int, ldb: Int, ldc: Int, accumulate: Bool
        ) {
            (self.transA, self.transB, self.m, self.n, self.k) = (transA, transB, m, n, k)
            (self.lda, self.ldb, self.ldc, self.accumulate) = (lda, ldb, ldc, accumulate)
        }
    }

    /// One primitive with its implementation's name (e.g. "brg:avx512_core_bf16").
    final class Primitive {
        let handle: dnnl_primitive_t
        let descriptor: dnnl_primitive_desc_t
        let implementation: String
        let a, b, c, scratchpad: dnnl_memory_desc_t
        init(
            handle: dnnl_primitive_t, descriptor: dnnl_primitive_desc_t, a: dnnl_memory_desc_t,
            b: dnnl_memory_desc_t, c: dnnl_memory_desc_t, scratchpad: dnnl_memory_desc_t, implementation: String
        ) {
            (self.handle, self.descriptor, self.a, self.b, self.c) = (handle, descriptor, a, b, c)
            (self.scratchpad, self.implementation) = (scratchpad, implementation)
        }
    }

    /// A thread's stream and its memory objects per form (their data pointers are set per call).
    final class ThreadState {
        let stream: dnnl_stream_t
        var memories: [Form: (a: dnnl_memory_t, b: dnnl_memory_t, c: dnnl_memory_t, scratch: dnnl_memory_t)] = [:]
        init(stream: dnnl_stream_t) { self.stream = stream }
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var primitives: [Form: Primitive] = [:]
    nonisolated(unsafe) private static var engineHandle: dnnl_engine_t?
    private static let threadKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)  // per-thread state lives as long as the process: threads are pooled
        return key
    }()

    /// oneDNN's CPU engine, or nil when it cannot start.
    static var engine: dnnl_engine_t? {
        lock.lock()
        defer { lock.unlock() }
        if engineHandle == nil {
            var e: dnnl_engine_t?
            if dnnl_engine_create(&e, dnnl_cpu, 0) == dnnl_success { engineHandle = e }
        }
        return engineHandle
    }

    /// The implementation oneDNN picks for a product of this form, e.g. "brg:avx512_core_amx" (nil if none).
    public static func implementation(of form: Form) -> String? { primitive(form)?.implementation }

    /// C = beta·C + op(A)·op(B) on this thread; false when oneDNN has no primitive for it.
    public static func gemm(
        _ form: Form, a: UnsafePointer<UInt16>, b: UnsafePointer<UInt16>, c: UnsafeMutablePointer<Float>
    ) -> Bool {
        guard let p = primitive(form), let state = threadState() else { return false }
        if state.memories[form] == nil {
            guard let engine else { return false }
            var am: dnnl_memory_t?, bm: dnnl_memory_t?, cm: dnnl_memory_t?, sm: dnnl_memory_t?
            var (ad, bd, cd, sd) = (p.a, p.b, p.c, p.scratchpad)
            // The scratchpad's memory is allocated by oneDNN (DNNL_MEMORY_ALLOCATE) and kept with the thread.
            guard dnnl_memory_create(&am, &ad, engine, nil) == dnnl_success,
                dnnl_memory_create(&bm, &bd, engine, nil) == dnnl_success,
                dnnl_memory_create(&cm, &cd, engine, nil) == dnnl_success,
                dnnl_memory_create(&sm, &sd, engine, UnsafeMutableRawPointer(bitPattern: -1)) == dnnl_success,
                let am, let bm, let cm, let sm
            else { return false }
            state.memories[form] = (am, bm, cm, sm)
        }
        let m = state.memories[form]!
        dnnl_memory_set_data_handle(m.a, UnsafeMutableRawPointer(mutating: a))
        dnnl_memory_set_data_handle(m.b, UnsafeMutableRawPointer(mutating: b))
        dnnl_memory_set_data_handle(m.c, UnsafeMutableRawPointer(c))
        var args = [
            dnnl_exec_arg_t(arg: DNNL_ARG_SRC, memory: m.a), dnnl_exec_arg_t(arg: DNNL_ARG_WEIGHTS, memory: m.b),
            dnnl_exec_arg_t(arg: DNNL_ARG_DST, memory: m.c),
            dnnl_exec_arg_t(arg: DNNL_ARG_SCRATCHPAD, memory: m.scratch),
        ]
        guard dnnl_primitive_execute(p.handle, state.stream, 4, &args) == dnnl_success else { return false }
        return dnnl_stream_wait(state.stream) == dnnl_success
    }

    /// This thread's stream (made on first use, when oneDNN's OpenMP team for this thread is set to one).
    private static func threadState() -> ThreadState? {
        if let raw = pthread_getspecific(threadKey) {
            return Unmanaged<ThreadState>.fromOpaque(raw).takeUnretainedValue()
        }
        guard let engine else { return nil }
        // libgomp (oneDNN's runtime) is loaded with libdnnl; found at run time, so nothing else links it.
        if let f = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "omp_set_num_threads") {
            unsafeBitCast(f, to: (@convention(c) (Int32) -> Void).self)(1)
        }
        var s: dnnl_stream_t?
        guard dnnl_stream_create(&s, engine, dnnl_stream_default_flags.rawValue) == dnnl_success,
            let s
        else { return nil }
        let state = ThreadState(stream: s)
        pthread_setspecific(threadKey, Unmanaged.passRetained(state).toOpaque())
        return state
    }

    /// The cached primitive for `form`, created on first use.
    private static func primitive(_ form: Form) -> Primitive? {
        lock.lock()
        if let p = primitives[form] {
            lock.unlock()
            return p
        }
        lock.unlock()
        guard let engine, let p = make(form, engine: engine) else { return nil }
        lock.lock()
        defer { lock.unlock() }
        if let existing = primitives[form] { return existing }
        primitives[form] = p
        return p
    }

    private static func make(_ f: Form, engine: dnnl_engine_t) -> Primitive? {
        var a = dnnl_memory_desc_t(), b = dnnl_memory_desc_t(), c = dnnl_memory_desc_t()
        var ad: (Int64, Int64) = (Int64(f.m), Int64(f.k)), bd: (Int64, Int64) = (Int64(f.k), Int64(f.n))
        var cdims: (Int64, Int64) = (Int64(f.m), Int64(f.n))
        var astr: (Int64, Int64) = f.transA ? (1, Int64(f.lda)) : (Int64(f.lda), 1)
        var bstr: (Int64, Int64) = f.transB ? (1, Int64(f.ldb)) : (Int64(f.ldb), 1)
        var cstr: (Int64, Int64) = (Int64(f.ldc), 1)
        func desc(
            _ d: inout dnnl_memory_desc_t, _ dims: inout (Int64, Int64), _ strides: inout (Int64, Int64),
            _ type: dnnl_data_type_t
        ) -> Bool {
            withUnsafeMutablePointer(to: &dims) { dp in
                withUnsafeMutablePointer(to: &strides) { sp in
                    dp.withMemoryRebound(to: Int64.self, capacity: 2) { dims in
                        sp.withMemoryRebound(to: Int64.self, capacity: 2) { strides in
                            dnnl_memory_desc_init_by_strides(&d, 2, dims, type, strides) == dnnl_success
                        }
                    }
                }
            }
        }
        guard desc(&a, &ad, &astr, dnnl_bf16), desc(&b, &bd, &bstr, dnnl_bf16), desc(&c, &cdims, &cstr, dnnl_f32)
        else { return nil }
        var md = dnnl_matmul_desc_t()
        guard dnnl_matmul_desc_init(&md, &a, &b, nil, &c) == dnnl_success else { return nil }
        var attr: dnnl_primitive_attr_t?
        guard dnnl_primitive_attr_create(&attr) == dnnl_success, let attr,
            dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success
        else { return nil }
        defer { dnnl_primitive_attr_destroy(attr) }
        if f.accumulate {  // beta = 1: C += A·B as a sum post-op
            var ops: dnnl_post_ops_t?
            guard dnnl_post_ops_create(&ops) == dnnl_success, let ops else { return nil }
            defer { dnnl_post_ops_destroy(ops) }
            guard dnnl_post_ops_append_sum(ops, 1) == dnnl_success,
                dnnl_primitive_attr_set_post_ops(attr, ops) == dnnl_success
            else { return nil }
        }
        var pd: dnnl_primitive_desc_t?
        guard dnnl_primitive_desc_create(&pd, &md, attr, engine, nil) == dnnl_success, let pd else { return nil }
        var prim: dnnl_primitive_t?
        guard dnnl_primitive_create(&prim, pd) == dnnl_success, let prim else { return nil }
        guard let scratch = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0) else { return nil }
        var impl: UnsafePointer<CChar>?
        _ = withUnsafeMutablePointer(to: &impl) { dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, $0) }
        return Primitive(
            handle: prim, descriptor: pd, a: a, b: b, c: c, scratchpad: scratch.pointee,
            implementation: impl.map { String(cString: $0) } ?? "?")
    }
}
