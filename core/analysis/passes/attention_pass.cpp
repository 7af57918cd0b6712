// The "attention" pass: entropy per head and the teacher-student head divergence (JS) over
// the mapped attention blocks, from eval/attention (read in bounded blocks).
#include "core/analysis/passes/analysis_context.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "core/analysis/attention_stats.h"
#include "core/analysis/residual.h"
#include "core/analysis/stats.h"
#include "core/record/run_layout.h"

namespace kdscope::core::passes {

namespace {

/// Eval examples of attention read at once (bounded memory for big attention tensors).
constexpr std::uint64_t kAttentionBlockBytes = 64ULL << 20U;

} // namespace

void attentionPass(AnalysisContext& ctx, const TaskInputs& in) {
  const std::string& task = in.task;
  const ModelRecord& teacher = *in.teacher;
  const std::vector<const ModelRecord*>& students = in.students;
  std::vector<const ModelRecord*> withMaps;
  if (teacher.hasAttention) {
    withMaps.push_back(&teacher);
  }
  for (const ModelRecord* s : students) {
    if (s->hasAttention) {
      withMaps.push_back(s);
    }
  }
  // Models whose pre-flight check found no attentions: said once each, with the reason.
  for (const ModelRecord* m : in.models) {
    if (!m->hasAttention && m->checkSkipped.count("attention") > 0) {
      ctx.skip(task, "attention/" + m->name, lackReason(*m, "attention", ""));
    }
  }
  if (withMaps.empty()) {
    ctx.skip(task, "attention", "no model has eval/attention (vector task, or recording.attention_examples = 0)");
    return;
  }
  const std::vector<std::int64_t> tokens = ctx.file->readInt64(layout::evalTokens(task));
  const auto shape = ctx.file->shape(layout::evalTokens(task));
  const std::size_t len = shape.size() == 2 ? shape[1] : 0;
  // Each model's own token counts: a TorchScript model tokenizes with its own tokenizer
  // (eval/token_counts); KDScope's models read eval/tokens.
  auto lengthsOf = [&](const ModelRecord& m, std::size_t first, std::size_t count) {
    std::vector<std::size_t> lengths(count, 0);
    for (std::size_t e = 0; e < count; ++e) {
      if (!m.tokenCounts.empty()) {
        lengths[e] = static_cast<std::size_t>(std::clamp<std::int64_t>(m.tokenCounts[first + e], 0, static_cast<std::int64_t>(len)));
        continue;
      }
      const std::int64_t* row = tokens.data() + (first + e) * len;
      std::size_t l = 0;
      while (l < len && row[l] != 0) {
        ++l;
      }
      lengths[e] = l;
    }
    return lengths;
  };
  // Examples per read block, and the pooled weight (counted rows) of each block.
  auto blockSize = [](const ModelRecord& m) {
    const std::uint64_t perExample = m.attLayers * m.attHeads * m.attLength * m.attLength * sizeof(float);
    return static_cast<std::size_t>(std::max<std::uint64_t>(1, kAttentionBlockBytes / std::max<std::uint64_t>(1, perExample)));
  };
  auto rowsOf = [](const std::vector<std::size_t>& lengths) {
    double rows = 0.0;
    for (std::size_t l : lengths) {
      rows += static_cast<double>(l);
    }
    return rows;
  };

  // Entropy per head of every model with maps.
  for (const ModelRecord* m : withMaps) {
    ctx.checkCancel();
    if (m->attLength != len) {
      ctx.skip(task, "attention/" + m->name, "eval/attention's length differs from eval/tokens'");
      continue;
    }
    ctx.phase(task, m->name, "attention entropy per head");
    const std::size_t L = m->attLayers;
    const std::size_t H = m->attHeads;
    std::vector<double> sum(L * H, 0.0);
    std::vector<double> weight(L * H, 0.0);
    const std::size_t block = blockSize(*m);
    for (std::size_t first = 0; first < m->attExamples; first += block) {
      const std::size_t count = std::min<std::size_t>(block, m->attExamples - first);
      const std::vector<float> maps = ctx.file->readFloat(layout::evalAttention(task, m->name), first, count);
      const auto lengths = lengthsOf(*m, first, count);
      const double rows = rowsOf(lengths);
      if (rows == 0.0) {
        continue;
      }
      for (std::size_t l = 0; l < L; ++l) {
        const auto view = an::AttentionLayer::fromLayers(maps, L, l, H, len);
        const auto entropy = an::attentionEntropy(view, lengths);
        for (std::size_t h = 0; h < H; ++h) {
          sum[l * H + h] += entropy[h] * rows;
          weight[l * H + h] += rows;
        }
      }
    }
    std::vector<double> entropy(L * H, kNaN);
    for (std::size_t i = 0; i < L * H; ++i) {
      if (weight[i] > 0.0) {
        entropy[i] = sum[i] / weight[i];
      }
    }
    const std::string g = layout::analysisOf(task, m->name);
    ctx.out->floats(layout::child(g, layout::entry::kAttentionEntropy), {L, H}, entropy);
    ctx.out->attr(layout::child(g, layout::entry::kAttentionEntropy), "examples", static_cast<std::int64_t>(m->attExamples));
    ctx.out->attr(layout::child(g, layout::entry::kAttentionEntropy), "unit", "nats; mean over the recorded examples' non-padding query rows");
  }

  // Teacher-student head divergence over the mapped attention blocks.
  if (!teacher.hasAttention || teacher.attLength != len) {
    ctx.skip(task, "attention/head_js", "the teacher has no usable eval/attention");
    return;
  }
  for (const ModelRecord* s : students) {
    ctx.checkCancel();
    if (!s->hasAttention || s->attLength != len) {
      continue;
    }
    // Position i of one model's map and of the other's are the same token only when both
    // tokenize the text alike: count the tokens of each and compare.
    const std::size_t compared = std::min(teacher.attExamples, s->attExamples);
    const auto teacherLengths = lengthsOf(teacher, 0, compared);
    const auto studentLengths = lengthsOf(*s, 0, compared);
    const auto differ = std::mismatch(teacherLengths.begin(), teacherLengths.end(), studentLengths.begin());
    if (differ.first != teacherLengths.end()) {
      const auto e = static_cast<std::size_t>(differ.first - teacherLengths.begin());
      ctx.skip(task, "attention/head_js/" + s->name,
               "the teacher and the student tokenize the texts differently (eval example " + std::to_string(e) + ": " +
                   std::to_string(*differ.first) + " tokens against " + std::to_string(*differ.second) +
                   "), so their attention maps have no common positions");
      continue;
    }
    ctx.phase(task, s->name, "teacher-student head divergence (Jensen-Shannon)");
    const auto [map, list] = ctx.layerMapOf(s->name);
    const an::LayerPairing pairing =
        an::layerPairing(map, static_cast<int>(teacher.attLayers), static_cast<int>(s->attLayers), list);
    const std::size_t ls = s->attLayers;
    const std::size_t ht = teacher.attHeads;
    const std::size_t hs = s->attHeads;
    const std::size_t examples = std::min(teacher.attExamples, s->attExamples);
    std::vector<double> js(ls * ht * hs, 0.0);
    std::vector<double> averaged(ls, 0.0);
    double totalRows = 0.0;
    // Each kept example's own JS matrix per student layer ([example][layer * ht * hs]) and its
    // counted rows: the pooled means below are their row-weighted means, and the best match's
    // bootstrap over the kept examples resamples them.
    std::vector<std::vector<double>> perExample(examples, std::vector<double>(ls * ht * hs, kNaN));
    std::vector<double> rowsOfExample(examples, 0.0);
    const std::size_t block = std::min(blockSize(teacher), blockSize(*s));
    for (std::size_t first = 0; first < examples; first += block) {
      const std::size_t count = std::min<std::size_t>(block, examples - first);
      const auto mapsT = ctx.file->readFloat(layout::evalAttention(task, "teacher"), first, count);
      const auto mapsS = ctx.file->readFloat(layout::evalAttention(task, s->name), first, count);
      const auto lengths = lengthsOf(teacher, first, count);
      const double rows = rowsOf(lengths);
      if (rows == 0.0) {
        continue;
      }
      totalRows += rows;
      for (std::size_t i = 0; i < ls; ++i) {
        const int j = pairing.attention[i];
        if (j < 0) {
          continue;
        }
        const auto viewT = an::AttentionLayer::fromLayers(mapsT, teacher.attLayers, static_cast<std::size_t>(j), ht, len);
        const auto viewS = an::AttentionLayer::fromLayers(mapsS, s->attLayers, i, hs, len);
        for (std::size_t e = 0; e < count; ++e) {
          if (lengths[e] == 0) {
            continue;
          }
          an::AttentionLayer oneT = viewT;
          an::AttentionLayer oneS = viewS;
          oneT.data += e * viewT.exampleStride;
          oneS.data += e * viewS.exampleStride;
          oneT.examples = 1;
          oneS.examples = 1;
          const double r = static_cast<double>(lengths[e]);
          const an::Matrix m = an::jsDivergenceMatrix(oneT, oneS, {lengths[e]}, ctx.options.threads);
          rowsOfExample[first + e] = r;
          for (std::size_t k = 0; k < ht * hs; ++k) {
            perExample[first + e][i * ht * hs + k] = m.values[k];
            js[i * ht * hs + k] += m.values[k] * r;
          }
        }
        averaged[i] += an::headAveragedJsDivergence(viewT, viewS, lengths) * rows;
      }
    }
    // A resample's row-weighted mean of a per-example value (examples with no counted rows
    // left out): every bootstrap statistic below.
    const auto rowWeightedMean = [&](const std::vector<std::uint32_t>& indices, const auto& valueOf) {
      double sum = 0.0;
      double weight = 0.0;
      for (const std::uint32_t e : indices) {
        if (rowsOfExample[e] > 0.0) {
          sum += valueOf(e) * rowsOfExample[e];
          weight += rowsOfExample[e];
        }
      }
      return weight > 0.0 ? sum / weight : kNaN;
    };
    std::vector<std::int64_t> teacherBlock;
    std::vector<std::int64_t> best(ls * ht, -1);
    std::vector<double> bestValue(ls * ht, kNaN);
    std::vector<double> bestLo(ls * ht, kNaN);
    std::vector<double> bestHi(ls * ht, kNaN);
    const an::BootstrapOptions bootstrap{ctx.options.bootstrapResamples, 0.95, ctx.options.bootstrapSeed};
    for (std::size_t i = 0; i < ls; ++i) {
      const int j = pairing.attention[i];
      teacherBlock.push_back(j);
      for (std::size_t k = 0; k < ht * hs; ++k) {
        js[i * ht * hs + k] = (j >= 0 && totalRows > 0.0) ? js[i * ht * hs + k] / totalRows : kNaN;
      }
      averaged[i] = (j >= 0 && totalRows > 0.0) ? averaged[i] / totalRows : kNaN;
      an::Matrix m(ht, hs);
      std::copy_n(js.begin() + static_cast<std::ptrdiff_t>(i * ht * hs), ht * hs, m.values.begin());
      const auto matches = an::bestMatch(m);
      for (std::size_t h = 0; h < ht; ++h) {
        if (matches[h].studentHead != an::HeadMatch::kNone) {
          best[i * ht + h] = static_cast<std::int64_t>(matches[h].studentHead);
          bestValue[i * ht + h] = matches[h].divergence;
          // Its 95% interval: percentile bootstrap over the kept examples of the row-weighted
          // mean, the match fixed (docs/statistics.md, "Heads").
          const std::size_t at = i * ht * hs + h * hs + matches[h].studentHead;
          const an::Interval band = an::bootstrapInterval(
              examples,
              [&](const std::vector<std::uint32_t>& indices) {
                return rowWeightedMean(indices, [&](std::uint32_t e) { return perExample[e][at]; });
              },
              bootstrap);
          bestLo[i * ht + h] = band.lo;
          bestHi[i * ht + h] = band.hi;
        }
      }
    }
    // The mean over the mapped teacher heads of their best-match divergence, with its
    // interval from the same resamples: every head's value is a row-weighted mean over the
    // same kept examples, so the mean over heads is the row-weighted mean of each example's
    // mean over those heads, resampled as one statistic (the matches fixed).
    std::vector<std::size_t> mapped; // offsets into perExample of the matched pairs
    double mappedSum = 0.0;          // of their best-match divergences
    for (std::size_t i = 0; i < ls; ++i) {
      for (std::size_t h = 0; h < ht; ++h) {
        if (best[i * ht + h] >= 0 && std::isfinite(bestValue[i * ht + h])) {
          mapped.push_back(i * ht * hs + h * hs + static_cast<std::size_t>(best[i * ht + h]));
          mappedSum += bestValue[i * ht + h];
        }
      }
    }
    an::Interval overHeads;
    if (!mapped.empty()) {
      std::vector<double> exampleMean(examples, kNaN);
      for (std::size_t e = 0; e < examples; ++e) {
        if (rowsOfExample[e] > 0.0) {
          double sum = 0.0;
          for (const std::size_t at : mapped) {
            sum += perExample[e][at];
          }
          exampleMean[e] = sum / static_cast<double>(mapped.size());
        }
      }
      const auto meanOf = [&](const std::vector<std::uint32_t>& indices) {
        return rowWeightedMean(indices, [&](std::uint32_t e) { return exampleMean[e]; });
      };
      overHeads = an::bootstrapInterval(examples, meanOf, bootstrap);
      overHeads.estimate = mappedSum / static_cast<double>(mapped.size()); // = meanOf(every example once)
    }
    // The teacher head matched least against the runner-up (the next-largest best-match
    // divergence), paired over the same resamples of the kept examples, the matches fixed:
    // each resample's row-weighted mean of the per-example difference of the two.
    an::RunnerUp worst;
    std::tie(worst.first, worst.second) = an::extremeAndRunnerUp(bestValue, an::Extreme::Highest);
    if (worst.valid()) {
      const auto offset = [&](std::size_t cell) {
        return (cell / ht) * ht * hs + (cell % ht) * hs + static_cast<std::size_t>(best[cell]);
      };
      const std::size_t a = offset(worst.first);
      const std::size_t b = offset(worst.second);
      worst.difference = an::bootstrapInterval(
          examples,
          [&](const std::vector<std::uint32_t>& indices) {
            return rowWeightedMean(indices, [&](std::uint32_t e) { return perExample[e][a] - perExample[e][b]; });
          },
          bootstrap);
      worst.difference.over = an::kOverSameResamples;
    }
    const std::string g = layout::analysisOf(task, s->name);
    ctx.out->floats(layout::child(g, layout::entry::kHeadJs), {ls, ht, hs}, js);
    ctx.out->ints(layout::child(g, layout::entry::kHeadJsTeacherLayer), {ls}, teacherBlock);
    ctx.out->ints(layout::child(g, layout::entry::kHeadJsBestMatch), {ls, ht}, best);
    ctx.out->floats(layout::child(g, layout::entry::kHeadJsBestDivergence), {ls, ht}, bestValue);
    ctx.out->floats(layout::child(g, layout::entry::kHeadJsBestDivergenceLo), {ls, ht}, bestLo);
    ctx.out->floats(layout::child(g, layout::entry::kHeadJsBestDivergenceHi), {ls, ht}, bestHi);
    ctx.out->attr(layout::child(g, layout::entry::kHeadJsBestDivergenceLo), "over",
                  std::string("kept eval examples (percentile bootstrap of the row-weighted mean, the match fixed)"));
    ctx.out->attr(layout::child(g, layout::entry::kHeadJsBestDivergenceLo), "resamples",
                  static_cast<std::int64_t>(ctx.options.bootstrapResamples));
    ctx.out->attr(layout::child(g, layout::entry::kHeadJsBestDivergenceLo), "seed",
                  static_cast<std::int64_t>(ctx.options.bootstrapSeed));
    if (!mapped.empty()) {
      const std::string bestPath = layout::child(g, layout::entry::kHeadJsBestDivergence);
      ctx.out->attr(bestPath, "mean_over_heads", overHeads.estimate);
      ctx.out->attr(bestPath, "mean_over_heads_lo", overHeads.lo);
      ctx.out->attr(bestPath, "mean_over_heads_hi", overHeads.hi);
      ctx.out->attr(bestPath, "mean_over_heads_count", static_cast<std::int64_t>(mapped.size()));
      writeRunnerUp(*ctx.out, bestPath, worst);
    }
    ctx.out->floats(layout::child(g, layout::entry::kHeadJsHeadAveraged), {ls}, averaged);
    ctx.out->attr(layout::child(g, layout::entry::kHeadJs), "map", map);
    ctx.out->attr(layout::child(g, layout::entry::kHeadJs), "examples", static_cast<std::int64_t>(examples));
    ctx.out->attr(layout::child(g, layout::entry::kHeadJs), "unit", "nats (at most ln 2); mean over the non-padding query rows of the recorded examples");
  }
}

} // namespace kdscope::core::passes
