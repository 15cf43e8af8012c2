// KeepLargeBuffersInTheHeap: process-wide malloc settings for processes that move large
// messages (parameter servers, workers, benchmarks). Call once at the start of main().
//
//   int main(int argc, char** argv) {
//     mtps::KeepLargeBuffersInTheHeap();
//     ...
//
// Why: a pull of 100k rows at dim 64 is a 25.6 MB reply. By default glibc serves such a
// block with a fresh mmap and unmaps it on free, so every request pays one page fault per
// 4 KiB (expensive in VMs) and the kernel zeroes every page. Raising the mmap threshold to
// its maximum (32 MiB) and never trimming the heap lets message buffers of that size be
// reused across requests instead.
// Thread-safety: call before other threads start.
#pragma once

namespace mtps {

void KeepLargeBuffersInTheHeap();

}  // namespace mtps
