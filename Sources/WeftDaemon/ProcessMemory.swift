/// The daemon's own memory.
enum ProcessMemory {
    /// At most two malloc arenas: glibc gives each busy thread its own (up to eight a core),
    /// and the concurrency pool's threads each keep one nearly empty. A daemon that is idle
    /// almost always trades no speed for the memory.
    static func limitArenas() {
        _ = glibcMallopt(-8 /* M_ARENA_MAX */, 2)
    }

    /// Hands the heap pages freed so far back to the kernel (glibc's `malloc_trim`), so a
    /// large startup listing does not stay in the resident set for the daemon's life.
    static func returnFreedPages() {
        _ = glibcMallocTrim(0)
    }
}

// glibc's, declared in <malloc.h>, which Swift's Glibc module does not import.
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32

// glibc's, declared in <malloc.h>, which Swift's Glibc module does not import.
@_silgen_name("malloc_trim")
private func glibcMallocTrim(_ pad: Int) -> Int32
