/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * KnnTopkFusion in four launches, memory O(B * N * k):
 *   1. knnActiveKernel      flags the queries whose masked feature column is not all zero;
 *   2. knnTopkKernel        one block per tile of kQueryTile queries: tiled FP32 dot products
 *                           against kSupportTile support columns at a time (channels staged in
 *                           shared memory kChannelTile at a time), then each query's running
 *                           top-k list (shared memory, k <= 32) absorbs the tile. Tiles without
 *                           an active query skip the dot products; inactive queries get 0 at 0..k-1;
 *   3. knnSoftmaxStatsKernel one block per row of the official [k, N] view of the row-major
 *                           (query, rank) buffer: maximum, then sum of exp(v - maximum);
 *   4. knnGatherKernel      R[c, n] = sum_r w[r, n] * S[c, j(r * N + n)].
 * Every value goes through the functions of knnTopkFusionMath.h, like the CPU library.
 */
#include "common/harmonyContract.h"
#include "knnTopkFusionPlugin/knnTopkFusionKernel.h"
#include "knnTopkFusionPlugin/knnTopkFusionMath.h"

namespace harmony
{
namespace
{

constexpr int32_t kQueryTile{32};
constexpr int32_t kSupportTile{64};
constexpr int32_t kChannelTile{16};
constexpr int32_t kTopkThreads{256};
// Thread layout of the dot-product tile: 16 x 16 threads, each 2 queries x 4 supports.
constexpr int32_t kTileThreadsX{16};
constexpr int32_t kTileThreadsY{kTopkThreads / kTileThreadsX};
constexpr int32_t kQueriesPerThread{kQueryTile / kTileThreadsY};
constexpr int32_t kSupportsPerThread{kSupportTile / kTileThreadsX};
constexpr int32_t kMaxK{contract::kKnnKMax};
constexpr int32_t kReduceThreads{256};
constexpr int32_t kElementThreads{256};
constexpr size_t kAlignment{256};

static_assert(kQueriesPerThread * kTileThreadsY == kQueryTile, "query tile must split evenly");
static_assert(kSupportsPerThread * kTileThreadsX == kSupportTile, "support tile must split evenly");
static_assert(kQueryTile <= kTopkThreads, "one thread per query merges the top-k");

size_t alignUp(size_t bytes)
{
    return (bytes + kAlignment - 1) / kAlignment * kAlignment;
}

//! Workspace layout, shared by the size query and the launcher.
struct KnnWorkspace
{
    float* values;    // [B, N*k] row-major (query, rank)
    int32_t* indices; // [B, N*k]
    float* rowMax;    // [B, k]
    float* rowSum;    // [B, k]
    uint8_t* active;  // [B, N]
    size_t bytes;
};

KnnWorkspace knnWorkspaceLayout(void* base, int32_t batch, int32_t nbPositions, int32_t k)
{
    size_t const lists = static_cast<size_t>(batch) * nbPositions * k;
    size_t const rows = static_cast<size_t>(batch) * k;
    size_t offset = 0;
    auto* bytes = static_cast<char*>(base);
    KnnWorkspace ws{};
    ws.values = reinterpret_cast<float*>(bytes + offset);
    offset += alignUp(lists * sizeof(float));
    ws.indices = reinterpret_cast<int32_t*>(bytes + offset);
    offset += alignUp(lists * sizeof(int32_t));
    ws.rowMax = reinterpret_cast<float*>(bytes + offset);
    offset += alignUp(rows * sizeof(float));
    ws.rowSum = reinterpret_cast<float*>(bytes + offset);
    offset += alignUp(rows * sizeof(float));
    ws.active = reinterpret_cast<uint8_t*>(bytes + offset);
    offset += alignUp(static_cast<size_t>(batch) * nbPositions);
    ws.bytes = offset;
    return ws;
}

template <typename T>
__global__ void knnActiveKernel(T const* __restrict__ features, T const* __restrict__ mask,
    uint8_t* __restrict__ active, int32_t channels, int32_t nbPositions)
{
    int32_t const q = static_cast<int32_t>(blockIdx.x) * kElementThreads + static_cast<int32_t>(threadIdx.x);
    if (q >= nbPositions)
    {
        return;
    }
    int64_t const b = blockIdx.y;
    int64_t const n = nbPositions;
    float const m = toFloat(mask[b * n + q]);
    bool isActive = false;
    for (int32_t c = 0; c < channels && !isActive; ++c)
    {
        isActive = knnQuery(toFloat(features[(b * channels + c) * n + q]), m) != 0.F;
    }
    active[b * n + q] = isActive ? 1 : 0;
}

template <typename T>
__global__ void __launch_bounds__(kTopkThreads)
    knnTopkKernel(T const* __restrict__ features, T const* __restrict__ mask, uint8_t const* __restrict__ active,
        float* __restrict__ values, int32_t* __restrict__ indices, int32_t channels, int32_t nbPositions, int32_t k)
{
    __shared__ float sQuery[kChannelTile][kQueryTile];
    __shared__ float sSupport[kChannelTile][kSupportTile];
    __shared__ float sDot[kQueryTile][kSupportTile + 1];
    __shared__ float sValues[kQueryTile][kMaxK + 1];
    __shared__ int32_t sIndices[kQueryTile][kMaxK + 1];

    int32_t const tid = threadIdx.x;
    int32_t const q0 = static_cast<int32_t>(blockIdx.x) * kQueryTile;
    int64_t const b = blockIdx.y;
    int64_t const n = nbPositions;
    T const* x = features + b * channels * n;
    T const* m = mask + b * n;

    // Thread tid < kQueryTile owns the running list of query q0 + tid.
    bool const ownsQuery = tid < kQueryTile && q0 + tid < nbPositions;
    bool const ownsActive = ownsQuery && active[b * n + q0 + tid] != 0;
    if (ownsQuery)
    {
        if (ownsActive)
        {
            knnTopkReset(sValues[tid], sIndices[tid], k);
        }
        else
        {
            knnTopkInactive(sValues[tid], sIndices[tid], k);
        }
    }
    // All-zero query rows need no dot products: skip the tile when none of its queries is active.
    if (__syncthreads_or(ownsActive ? 1 : 0) != 0)
    {
        int32_t const tx = tid % kTileThreadsX;
        int32_t const ty = tid / kTileThreadsX;
        for (int32_t s0 = 0; s0 < nbPositions; s0 += kSupportTile)
        {
            float acc[kQueriesPerThread][kSupportsPerThread] = {};
            for (int32_t c0 = 0; c0 < channels; c0 += kChannelTile)
            {
                for (int32_t e = tid; e < kChannelTile * kQueryTile; e += kTopkThreads)
                {
                    int32_t const cc = e / kQueryTile;
                    int32_t const qq = e % kQueryTile;
                    int32_t const c = c0 + cc;
                    int32_t const q = q0 + qq;
                    sQuery[cc][qq]
                        = (c < channels && q < nbPositions) ? knnQuery(toFloat(x[c * n + q]), toFloat(m[q])) : 0.F;
                }
                for (int32_t e = tid; e < kChannelTile * kSupportTile; e += kTopkThreads)
                {
                    int32_t const cc = e / kSupportTile;
                    int32_t const ss = e % kSupportTile;
                    int32_t const c = c0 + cc;
                    int32_t const s = s0 + ss;
                    sSupport[cc][ss]
                        = (c < channels && s < nbPositions) ? knnSupport(toFloat(x[c * n + s]), toFloat(m[s])) : 0.F;
                }
                __syncthreads();
                int32_t const ccEnd = channels - c0 < kChannelTile ? channels - c0 : kChannelTile;
                // Channels are summed in increasing order, one product at a time, like the CPU
                // library (the kernels are built with --fmad=false).
                for (int32_t cc = 0; cc < ccEnd; ++cc)
                {
#pragma unroll
                    for (int32_t v = 0; v < kQueriesPerThread; ++v)
                    {
                        float const qv = sQuery[cc][ty + v * kTileThreadsY];
#pragma unroll
                        for (int32_t u = 0; u < kSupportsPerThread; ++u)
                        {
                            acc[v][u] += qv * sSupport[cc][tx + u * kTileThreadsX];
                        }
                    }
                }
                __syncthreads();
            }
#pragma unroll
            for (int32_t v = 0; v < kQueriesPerThread; ++v)
            {
#pragma unroll
                for (int32_t u = 0; u < kSupportsPerThread; ++u)
                {
                    sDot[ty + v * kTileThreadsY][tx + u * kTileThreadsX] = acc[v][u];
                }
            }
            __syncthreads();
            if (ownsActive)
            {
                int32_t const ssEnd = nbPositions - s0 < kSupportTile ? nbPositions - s0 : kSupportTile;
                for (int32_t ss = 0; ss < ssEnd; ++ss)
                {
                    knnTopkInsert(sValues[tid], sIndices[tid], k, sDot[tid][ss], s0 + ss);
                }
            }
            __syncthreads();
        }
    }
    if (ownsQuery)
    {
        int64_t const base = (b * n + q0 + tid) * k;
        for (int32_t r = 0; r < k; ++r)
        {
            values[base + r] = sValues[tid][r];
            indices[base + r] = sIndices[tid][r];
        }
    }
}

//! Block-wide reduction of one float per thread; op is max or sum.
template <bool kMax>
__device__ float blockReduce(float value, float* scratch)
{
    int32_t const tid = threadIdx.x;
    scratch[tid] = value;
    __syncthreads();
    for (int32_t stride = kReduceThreads / 2; stride > 0; stride /= 2)
    {
        if (tid < stride)
        {
            float const other = scratch[tid + stride];
            scratch[tid] = kMax ? (other > scratch[tid] ? other : scratch[tid]) : scratch[tid] + other;
        }
        __syncthreads();
    }
    float const result = scratch[0];
    __syncthreads();
    return result;
}

//! One block per (view row r, batch b): statistics of softmax over the N values of row r.
__global__ void __launch_bounds__(kReduceThreads) knnSoftmaxStatsKernel(float const* __restrict__ values,
    float* __restrict__ rowMax, float* __restrict__ rowSum, int32_t nbPositions, int32_t k)
{
    __shared__ float scratch[kReduceThreads];
    int32_t const r = blockIdx.x;
    int64_t const b = blockIdx.y;
    float const* row = values + b * nbPositions * static_cast<int64_t>(k) + knnViewOffset(r, 0, nbPositions);
    float localMax = -FLT_MAX;
    for (int32_t p = threadIdx.x; p < nbPositions; p += kReduceThreads)
    {
        localMax = row[p] > localMax ? row[p] : localMax;
    }
    float const maximum = blockReduce<true>(localMax, scratch);
    float localSum = 0.F;
    for (int32_t p = threadIdx.x; p < nbPositions; p += kReduceThreads)
    {
        localSum += knnSoftmaxTerm(row[p], maximum);
    }
    float const sum = blockReduce<false>(localSum, scratch);
    if (threadIdx.x == 0)
    {
        rowMax[b * k + r] = maximum;
        rowSum[b * k + r] = sum;
    }
}

//! One thread per output element (b, c, n), n fastest (coalesced writes).
template <typename T>
__global__ void knnGatherKernel(T const* __restrict__ features, T const* __restrict__ mask,
    float const* __restrict__ values, int32_t const* __restrict__ indices, float const* __restrict__ rowMax,
    float const* __restrict__ rowSum, T* __restrict__ out, int32_t channels, int32_t nbPositions, int32_t k)
{
    int32_t const p = static_cast<int32_t>(blockIdx.x) * kElementThreads + static_cast<int32_t>(threadIdx.x);
    if (p >= nbPositions)
    {
        return;
    }
    int64_t const c = blockIdx.y;
    int64_t const b = blockIdx.z;
    int64_t const n = nbPositions;
    T const* x = features + b * channels * n;
    T const* m = mask + b * n;
    float const* bValues = values + b * n * k;
    int32_t const* bIndices = indices + b * n * k;
    float acc = 0.F;
    for (int32_t r = 0; r < k; ++r)
    {
        int64_t const f = knnViewOffset(r, p, nbPositions);
        int32_t const j = bIndices[f];
        float const w = knnSoftmaxWeight(bValues[f], rowMax[b * k + r], rowSum[b * k + r]);
        acc += w * knnSupport(toFloat(x[c * n + j]), toFloat(m[j]));
    }
    out[(b * channels + c) * n + p] = static_cast<T>(acc);
}


} // namespace

size_t knnTopkFusionWorkspaceSize(int32_t batch, int32_t nbPositions, int32_t k)
{
    return knnWorkspaceLayout(nullptr, batch, nbPositions, k).bytes;
}

template <typename T>
cudaError_t launchKnnTopkFusion(T const* features, T const* mask, T* out, void* workspace, int32_t batch,
    int32_t channels, int32_t nbPositions, int32_t k, cudaStream_t stream)
{
    if (batch <= 0 || channels <= 0 || nbPositions <= 0 || k < contract::kKnnKMin || k > contract::kKnnKMax
        || k > nbPositions || batch > kMaxGridDim || channels > kMaxGridDim || workspace == nullptr)
    {
        return cudaErrorInvalidValue;
    }
    KnnWorkspace const ws = knnWorkspaceLayout(workspace, batch, nbPositions, k);
    dim3 const elementGrid((nbPositions + kElementThreads - 1) / kElementThreads, batch);
    knnActiveKernel<T><<<elementGrid, kElementThreads, 0, stream>>>(features, mask, ws.active, channels, nbPositions);
    dim3 const topkGrid((nbPositions + kQueryTile - 1) / kQueryTile, batch);
    knnTopkKernel<T><<<topkGrid, kTopkThreads, 0, stream>>>(
        features, mask, ws.active, ws.values, ws.indices, channels, nbPositions, k);
    knnSoftmaxStatsKernel<<<dim3(k, batch), kReduceThreads, 0, stream>>>(
        ws.values, ws.rowMax, ws.rowSum, nbPositions, k);
    dim3 const gatherGrid((nbPositions + kElementThreads - 1) / kElementThreads, channels, batch);
    knnGatherKernel<T><<<gatherGrid, kElementThreads, 0, stream>>>(
        features, mask, ws.values, ws.indices, ws.rowMax, ws.rowSum, out, channels, nbPositions, k);
    return cudaGetLastError();
}

cudaError_t probeKnnTopkFusion()
{
    // The kernels of this file share one module: loading one of each element type covers them.
    cudaFuncAttributes attributes{};
    cudaError_t const status = cudaFuncGetAttributes(&attributes, knnTopkKernel<float>);
    return status != cudaSuccess ? status : cudaFuncGetAttributes(&attributes, knnTopkKernel<__half>);
}

template cudaError_t launchKnnTopkFusion<float>(
    float const*, float const*, float*, void*, int32_t, int32_t, int32_t, int32_t, cudaStream_t);
template cudaError_t launchKnnTopkFusion<__half>(
    __half const*, __half const*, __half*, void*, int32_t, int32_t, int32_t, int32_t, cudaStream_t);

} // namespace harmony
