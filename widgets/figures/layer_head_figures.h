#pragma once
/// The registry entries of the layer and head figures with intervals (layer_head_figures.cpp;
/// docs/figures.md): runFigures (figure_registry.cpp) calls these where the layers and the
/// heads figures are listed, so `--figure all`, the figure pack and the export dialog list
/// them in their view like the others. GUI (main) thread.

#include <vector>

#include "widgets/figures/figure_registry.h"

namespace kdscope::widgets {

/// layers.cka_matched.TASK.STUDENT for each student whose CKA at matched depth was analysed.
void appendLayerIntervalFigures(const RunDocument& run, std::vector<FigureSpec>& out);
/// heads.importance_intervals.TASK.MODEL and heads.ablation.TASK.MODEL for each model (teacher
/// first) whose head importance intervals, or ablation intervals, were analysed.
void appendHeadIntervalFigures(const RunDocument& run, std::vector<FigureSpec>& out);

} // namespace kdscope::widgets
