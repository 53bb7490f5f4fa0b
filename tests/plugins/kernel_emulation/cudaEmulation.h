/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Host emulation of the few CUDA constructs the plugin kernels use, so that the very same kernel
 * sources run without a GPU (tests/plugins/test_plugin_kernel_emulation.py). Included first by
 * each kernel source, which the test copies with every `kernel<<<grid, block, smem, stream>>>(`
 * rewritten to `harmony_emu::launch(kernel, grid, block, smem, stream, `.
 *
 * One OS thread per CUDA thread of a block; the blocks of a launch run one after another, so a
 * `__shared__` variable (made `static`) is private to the running block. `__syncthreads()` is a
 * std::barrier per block, which a thread that returns early drops out of. The interleaving of the
 * threads is the OS scheduler's, not a warp's: this checks the index math, tile edges, the
 * barrier structure and (under ThreadSanitizer) shared-memory races; not warp-synchronous code,
 * timing, occupancy or the device's math library.
 */
#ifndef HARMONY_CUDA_EMULATION_H
#define HARMONY_CUDA_EMULATION_H

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <atomic>
#include <barrier>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

namespace harmony_emu
{

inline thread_local uint3 tThreadIdx;
inline thread_local uint3 tBlockIdx;
inline thread_local dim3 tGridDim;
inline thread_local dim3 tBlockDim;
inline thread_local std::barrier<>* tBarrier = nullptr;
inline std::atomic<int> gSyncOr{0};
inline std::atomic<long> gBlocks{0};

inline void syncthreads()
{
    tBarrier->arrive_and_wait();
}

inline int syncthreadsOr(int predicate)
{
    tBarrier->arrive_and_wait();
    if (tThreadIdx.x == 0)
    {
        gSyncOr.store(0);
    }
    tBarrier->arrive_and_wait();
    if (predicate != 0)
    {
        gSyncOr.fetch_or(1);
    }
    tBarrier->arrive_and_wait();
    int const result = gSyncOr.load();
    tBarrier->arrive_and_wait();
    return result;
}

//! kernel<<<grid, block, smem, stream>>>(args...) on host threads; aborts on a launch the device
//! would refuse (grid.y/z > 65535, more than 1024 threads) or that this emulation cannot run.
template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t sharedBytes, cudaStream_t, Args... args)
{
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535 || block.x == 0
        || block.x > 1024 || block.y != 1 || block.z != 1 || sharedBytes != 0)
    {
        std::fprintf(stderr, "harmony_emu: launch grid (%u,%u,%u) block (%u,%u,%u) smem %zu refused\n", grid.x,
            grid.y, grid.z, block.x, block.y, block.z, sharedBytes);
        std::abort();
    }
    size_t const nbBlocks = static_cast<size_t>(grid.x) * grid.y * grid.z;
    std::vector<std::unique_ptr<std::barrier<>>> inBlock(nbBlocks);
    for (auto& barrier : inBlock)
    {
        barrier = std::make_unique<std::barrier<>>(static_cast<std::ptrdiff_t>(block.x));
    }
    // Every thread reaches this one once per block: the next block starts when this one is done.
    std::barrier<> blockEnd(static_cast<std::ptrdiff_t>(block.x));
    std::vector<std::thread> threads;
    threads.reserve(block.x);
    for (unsigned t = 0; t < block.x; ++t)
    {
        threads.emplace_back(
            [&, t]()
            {
                size_t index = 0;
                for (unsigned z = 0; z < grid.z; ++z)
                {
                    for (unsigned y = 0; y < grid.y; ++y)
                    {
                        for (unsigned x = 0; x < grid.x; ++x, ++index)
                        {
                            tBarrier = inBlock[index].get();
                            tThreadIdx = uint3{t, 0, 0};
                            tBlockIdx = uint3{x, y, z};
                            tGridDim = grid;
                            tBlockDim = block;
                            kernel(static_cast<Params>(args)...);
                            inBlock[index]->arrive_and_drop();
                            blockEnd.arrive_and_wait();
                        }
                    }
                }
            });
    }
    for (auto& thread : threads)
    {
        thread.join();
    }
    gBlocks += static_cast<long>(nbBlocks);
}

} // namespace harmony_emu

#undef __global__
#undef __device__
#undef __host__
#undef __shared__
#undef __forceinline__
#undef __launch_bounds__
#define __global__
#define __device__
#define __host__
#define __shared__ static
#define __forceinline__ inline
#define __launch_bounds__(...)
#define threadIdx harmony_emu::tThreadIdx
#define blockIdx harmony_emu::tBlockIdx
#define gridDim harmony_emu::tGridDim
#define blockDim harmony_emu::tBlockDim
#define __syncthreads() harmony_emu::syncthreads()
#define __syncthreads_or(predicate) harmony_emu::syncthreadsOr(predicate)
// Launch errors are the emulation's aborts above.
#define cudaGetLastError() cudaSuccess
#define cudaFuncGetAttributes(attributes, kernel) ((void) (attributes), (void) (kernel), cudaSuccess)

#endif // HARMONY_CUDA_EMULATION_H
