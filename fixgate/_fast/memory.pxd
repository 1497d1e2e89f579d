# Allocation for the hot path's tables (declarations only).
#
# calloc hands out large blocks as untouched zero pages: the first write to each page then costs a
# page fault of a microsecond or more. A book that grows into fresh pages in the middle of trading
# would pay that inside a check. alloc_prefaulted writes one byte per page at allocation, through a
# volatile pointer so that the compiler cannot drop the writes as redundant on calloc'd memory.
cdef extern from *:
    """
    #include <stdlib.h>
    #include <stdint.h>

    static void* fg_alloc_prefaulted(size_t count, size_t size) {
        size_t offset;
        size_t bytes;
        volatile char* page;
        char* memory;
        if (size != 0 && count > SIZE_MAX / size) {
            return NULL;
        }
        memory = (char*)calloc(count, size);
        if (memory != NULL) {
            bytes = count * size;
            page = memory;
            for (offset = 0; offset < bytes; offset += 4096) {
                page[offset] = 0;
            }
        }
        return memory;
    }
    """
    void* alloc_prefaulted "fg_alloc_prefaulted"(size_t count, size_t size) noexcept nogil
