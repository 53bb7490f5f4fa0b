/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * KnnTopkFusion on the CPU (harmonyCpuKernels.h). The order of candidates, the tie rule, the
 * inactive rows, the [k, N] view and the softmax come from knnTopkFusionMath.h, as on the GPU;
 * the dot products are computed as a blocked GEMM instead of one by one:
 *
 * - Only supports that are not all zero are scored. A zero support (a foreground position, or a
 *   zero feature vector) scores exactly +0 against every finite query, so the first k of them
 *   (lowest indices) enter every list as candidates of value 0 and the rest cannot matter. Where
 *   any query of the batch element holds a non-finite element (0 * inf is NaN), every support of
 *   that batch element is scored.
 * - The packed supports [S/16][C][16] are scored against groups of 6 queries: 6 accumulators of
 *   16 lanes, fused multiply-adds (the sums round unlike a scalar loop's; the tests compare them
 *   with the PyTorch reference `harmony.ops` within a tolerance), compiled for AVX-512, AVX2+FMA and a generic target and
 *   chosen at load time (target_clones). A lane enters the running top-k only when it is not
 *   below the query's current k-th value, so after the first blocks almost none does.
 */
#include "cpu/harmonyCpuKernels.h"

#include "knnTopkFusionPlugin/knnTopkFusionMath.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace harmony
{
namespace cpu
{
namespace
{

constexpr int32_t kLanes{16};          // supports per packed vector
constexpr int32_t kGroup{6};           // queries scored together, one accumulator each
constexpr int32_t kGroupsPerTask{8};   // query groups per parallel task
constexpr int32_t kSupportBlock{64};   // packed vectors per cache block
constexpr int32_t kFusePositions{256}; // positions per parallel task of the weighted sum

using Vec = float __attribute__((vector_size(kLanes * sizeof(float))));
using Flags = int32_t __attribute__((vector_size(kLanes * sizeof(int32_t))));

int64_t ceilDiv(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

//! What one batch element's scoring works on.
struct Operands
{
    std::vector<int32_t> queries;     //!< positions with a non-zero query x * m
    std::vector<int32_t> supports;    //!< positions whose support is scored
    std::vector<int32_t> zeroSupports; //!< the first k positions of all-zero supports (score +0)
};

Operands operands(float const* x, float const* m, int32_t channels, int32_t nbPositions, int32_t k)
{
    int64_t const n = nbPositions;
    std::vector<char> query(static_cast<size_t>(n), 0);
    std::vector<char> support(static_cast<size_t>(n), 0);
    bool finite = true;
    for (int32_t c = 0; c < channels; ++c)
    {
        for (int64_t p = 0; p < n; ++p)
        {
            float const q = knnQuery(x[c * n + p], m[p]);
            query[p] = query[p] || q != 0.F;
            finite = finite && std::isfinite(q);
            support[p] = support[p] || knnSupport(x[c * n + p], m[p]) != 0.F; // NaN: scored
        }
    }
    Operands result;
    for (int32_t p = 0; p < nbPositions; ++p)
    {
        if (query[p])
        {
            result.queries.push_back(p);
        }
        if (support[p] || !finite)
        {
            result.supports.push_back(p);
        }
        else if (static_cast<int32_t>(result.zeroSupports.size()) < k)
        {
            result.zeroSupports.push_back(p);
        }
    }
    return result;
}

//! The scored supports, packed [ceil(S/16)][C][16]; lanes past S hold 0.
std::vector<float> packSupports(
    float const* x, float const* m, int32_t channels, int32_t nbPositions, std::vector<int32_t> const& supports,
    ParallelFor const& parallel)
{
    int64_t const n = nbPositions;
    int64_t const count = static_cast<int64_t>(supports.size());
    int64_t const vectors = ceilDiv(count, kLanes);
    std::vector<float> packed(static_cast<size_t>(vectors * channels * kLanes), 0.F);
    parallel(vectors, [&](int64_t v) {
        float* out = packed.data() + v * channels * kLanes;
        int64_t const lanes = std::min<int64_t>(kLanes, count - v * kLanes);
        for (int32_t c = 0; c < channels; ++c)
        {
            for (int64_t lane = 0; lane < lanes; ++lane)
            {
                int32_t const s = supports[v * kLanes + lane];
                out[c * kLanes + lane] = knnSupport(x[c * n + s], m[s]);
            }
        }
    });
    return packed;
}

//! Scores of 6 queries (packed [C][6]) against the packed vectors [v0, v1): scores[v][i][lane]
//! (relative to v0), and flags[v][i] = whether any lane is not below kth[i] (NaN included).
__attribute__((target_clones("avx512f", "arch=haswell", "default"))) void scoreBlock(float const* queries,
    float const* supports, int64_t v0, int64_t v1, int32_t channels, float const* kth, float* scores, char* flags)
{
    for (int64_t v = v0; v < v1; ++v)
    {
        float const* vectorSupports = supports + v * channels * kLanes;
        Vec dots[kGroup] = {};
        for (int32_t c = 0; c < channels; ++c)
        {
            Vec support;
            std::memcpy(&support, vectorSupports + c * kLanes, sizeof(Vec));
            float const* query = queries + c * kGroup;
            for (int32_t i = 0; i < kGroup; ++i)
            {
                dots[i] += query[i] * support;
            }
        }
        for (int32_t i = 0; i < kGroup; ++i)
        {
            Flags const pass = (dots[i] >= kth[i]) | (dots[i] != dots[i]);
            int32_t any = 0;
            for (int32_t lane = 0; lane < kLanes; ++lane)
            {
                any |= pass[lane];
            }
            flags[(v - v0) * kGroup + i] = static_cast<char>(any != 0);
            std::memcpy(scores + ((v - v0) * kGroup + i) * kLanes, &dots[i], sizeof(Vec));
        }
    }
}

//! Top-k of one batch element: values/indices [N, k] row-major (query, rank).
void knnTopkOne(float const* x, float const* m, float* values, int32_t* indices, int32_t channels,
    int32_t nbPositions, int32_t k, ParallelFor const& parallel)
{
    int64_t const n = nbPositions;
    Operands const work = operands(x, m, channels, nbPositions, k);
    std::vector<int32_t> const& queries = work.queries;
    for (int32_t q = 0, next = 0; q < nbPositions; ++q)
    {
        float* queryValues = values + q * static_cast<int64_t>(k);
        int32_t* queryIndices = indices + q * static_cast<int64_t>(k);
        if (next < static_cast<int32_t>(queries.size()) && queries[next] == q)
        {
            knnTopkReset(queryValues, queryIndices, k);
            for (int32_t s : work.zeroSupports)
            {
                knnTopkInsert(queryValues, queryIndices, k, 0.F, s);
            }
            ++next;
        }
        else
        {
            knnTopkInactive(queryValues, queryIndices, k);
        }
    }
    if (queries.empty() || work.supports.empty())
    {
        return;
    }
    std::vector<float> const supports = packSupports(x, m, channels, nbPositions, work.supports, parallel);
    int64_t const count = static_cast<int64_t>(work.supports.size());
    int64_t const vectors = ceilDiv(count, kLanes);
    int64_t const groups = ceilDiv(static_cast<int64_t>(queries.size()), kGroup);
    int64_t const tasks = ceilDiv(groups, kGroupsPerTask);
    parallel(tasks, [&](int64_t task) {
        int64_t const firstGroup = task * kGroupsPerTask;
        int64_t const nbGroups = std::min<int64_t>(kGroupsPerTask, groups - firstGroup);
        // Queries of the task's groups, packed [group][C][6]; slots past the last query hold 0.
        std::vector<float> packed(static_cast<size_t>(nbGroups * channels * kGroup), 0.F);
        for (int64_t g = 0; g < nbGroups; ++g)
        {
            for (int32_t i = 0; i < kGroup; ++i)
            {
                int64_t const slot = (firstGroup + g) * kGroup + i;
                if (slot >= static_cast<int64_t>(queries.size()))
                {
                    break;
                }
                int32_t const q = queries[slot];
                for (int32_t c = 0; c < channels; ++c)
                {
                    packed[(g * channels + c) * kGroup + i] = knnQuery(x[c * n + q], m[q]);
                }
            }
        }
        std::vector<float> scores(static_cast<size_t>(kSupportBlock * kGroup * kLanes));
        std::vector<char> flags(static_cast<size_t>(kSupportBlock * kGroup));
        float kth[kGroup];
        for (int64_t v0 = 0; v0 < vectors; v0 += kSupportBlock)
        {
            int64_t const v1 = std::min<int64_t>(v0 + kSupportBlock, vectors);
            for (int64_t g = 0; g < nbGroups; ++g)
            {
                int64_t const firstSlot = (firstGroup + g) * kGroup;
                int64_t const nbQueries = std::min<int64_t>(kGroup, static_cast<int64_t>(queries.size()) - firstSlot);
                for (int32_t i = 0; i < kGroup; ++i)
                {
                    // Padding slots: +inf passes nothing (their scores are never read anyway).
                    kth[i] = i < nbQueries ? values[queries[firstSlot + i] * static_cast<int64_t>(k) + k - 1] : INFINITY;
                }
                scoreBlock(packed.data() + g * channels * kGroup, supports.data(), v0, v1, channels, kth,
                    scores.data(), flags.data());
                for (int64_t v = v0; v < v1; ++v)
                {
                    int64_t const lanes = std::min<int64_t>(kLanes, count - v * kLanes);
                    for (int64_t i = 0; i < nbQueries; ++i)
                    {
                        if (!flags[(v - v0) * kGroup + i])
                        {
                            continue;
                        }
                        int64_t const q = queries[firstSlot + i];
                        float const* laneScores = scores.data() + ((v - v0) * kGroup + i) * kLanes;
                        for (int64_t lane = 0; lane < lanes; ++lane)
                        {
                            knnTopkInsert(values + q * k, indices + q * k, k, laneScores[lane],
                                work.supports[v * kLanes + lane]);
                        }
                    }
                }
            }
        }
    });
}

//! Softmax-weighted sum of the selected supports of one batch element into out [C, N].
void knnFuseOne(float const* x, float const* m, float const* values, int32_t const* indices, float* out,
    int32_t channels, int32_t nbPositions, int32_t k, ParallelFor const& parallel)
{
    int64_t const n = nbPositions;
    std::vector<float> rowMax(static_cast<size_t>(k));
    std::vector<float> rowSum(static_cast<size_t>(k));
    for (int32_t r = 0; r < k; ++r)
    {
        float const* row = values + knnViewOffset(r, 0, nbPositions);
        float maximum = row[0];
        for (int64_t p = 1; p < n; ++p)
        {
            maximum = row[p] > maximum ? row[p] : maximum;
        }
        float sum = 0.F;
        for (int64_t p = 0; p < n; ++p)
        {
            sum += knnSoftmaxTerm(row[p], maximum);
        }
        rowMax[r] = maximum;
        rowSum[r] = sum;
    }
    parallel(ceilDiv(n, kFusePositions), [&](int64_t task) {
        std::vector<float> weights(static_cast<size_t>(k));
        std::vector<int32_t> support(static_cast<size_t>(k));
        int64_t const end = std::min<int64_t>(n, (task + 1) * kFusePositions);
        for (int64_t p = task * kFusePositions; p < end; ++p)
        {
            for (int32_t r = 0; r < k; ++r)
            {
                int64_t const f = knnViewOffset(r, static_cast<int32_t>(p), nbPositions);
                weights[r] = knnSoftmaxWeight(values[f], rowMax[r], rowSum[r]);
                support[r] = indices[f];
            }
            for (int32_t c = 0; c < channels; ++c)
            {
                float acc = 0.F;
                for (int32_t r = 0; r < k; ++r)
                {
                    int32_t const j = support[r];
                    acc += weights[r] * knnSupport(x[c * n + j], m[j]);
                }
                out[c * n + p] = acc;
            }
        }
    });
}

} // namespace

void knnTopk(float const* features, float const* mask, float* values, int32_t* indices, int32_t batch,
    int32_t channels, int32_t nbPositions, int32_t k, ParallelFor const& parallel)
{
    int64_t const n = nbPositions;
    for (int32_t b = 0; b < batch; ++b)
    {
        knnTopkOne(features + b * channels * n, mask + b * n, values + b * n * k, indices + b * n * k, channels,
            nbPositions, k, parallel);
    }
}

void knnTopkFusion(float const* features, float const* mask, float* out, int32_t batch, int32_t channels,
    int32_t nbPositions, int32_t k, ParallelFor const& parallel)
{
    int64_t const n = nbPositions;
    std::vector<float> values(static_cast<size_t>(n * k));
    std::vector<int32_t> indices(static_cast<size_t>(n * k));
    for (int32_t b = 0; b < batch; ++b)
    {
        float const* x = features + b * channels * n;
        float const* m = mask + b * n;
        knnTopkOne(x, m, values.data(), indices.data(), channels, nbPositions, k, parallel);
        knnFuseOne(x, m, values.data(), indices.data(), out + b * channels * n, channels, nbPositions, k, parallel);
    }
}

} // namespace cpu
} // namespace harmony
