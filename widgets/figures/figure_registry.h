#pragma once
/// The figure registry: every figure a run (or a comparison of runs) can produce, each with
/// a name ("layers.cka.polarity.kd"), the view it belongs to, a caption saying what it
/// shows, where its numbers come from, and a builder that fills a PlotWidget. The views,
/// File > Export, the figure pack and `kdscope export` all go through it, so the same name
/// and style give the same figure everywhere (docs/figures.md). GUI (main) thread; the
/// builders read the run files through RunDocument.

#include <QString>
#include <QStringList>

#include <functional>
#include <optional>
#include <vector>

#include "widgets/figures/figure_builders.h"

namespace kdscope::widgets {

class PlotWidget;
class RunDocument;

struct FigureSpec {
  QString name;    ///< unique in its catalog; with several runs, per-run names are "LABEL/name"
  QString view;    ///< overview, layers, heads, tasks, examples, knowledge or compare
  QString caption; ///< one or two sentences: what the figure shows
  QStringList runPaths; ///< the run files it reads (absolute, canonical)
  FigureProvenance provenance;
  /// Fills the plot (the builders of figure_builders.h); may throw core::InputError.
  std::function<void(PlotWidget&)> build;
};

/// Adds figures of one run to the registry's enumeration (for views added later: call once
/// at start-up, before any catalog is made). `labelled` is how the run is named.
using FigureProvider = std::function<void(const RunDocument& run, std::vector<FigureSpec>& figures)>;
void registerFigureProvider(FigureProvider provider);

/// The figures of a set of open runs. Holds pointers to the documents, which must outlive it.
class FigureCatalog {
public:
  explicit FigureCatalog(std::vector<const RunDocument*> runs);
  /// A catalog of given figures that belong to no run (a study's, study_figures.h), so
  /// select() and find() work on them as on a run's.
  explicit FigureCatalog(std::vector<FigureSpec> figures);

  /// Every figure `--figure all` exports, grouped by view: per run, then the comparisons
  /// when there are two runs or more.
  [[nodiscard]] const std::vector<FigureSpec>& figures() const { return m_figures; }
  /// A figure by name: one of figures(), or one of a family too large to list in full
  /// (attention maps: heads.attention.TASK.MODEL.eE.lL.hH|mean).
  [[nodiscard]] std::optional<FigureSpec> find(const QString& name) const;
  /// Figures whose names match: "all", exact names, or globs (`*`, `?`, e.g. "layers.*").
  /// Patterns that match nothing go to `unmatched`.
  [[nodiscard]] std::vector<FigureSpec> select(const QStringList& patterns, QStringList* unmatched = nullptr) const;
  /// Lines for `--list` about the families find() knows beyond figures().
  [[nodiscard]] QStringList families() const;

  [[nodiscard]] const std::vector<const RunDocument*>& runs() const { return m_runs; }
  /// How each run is named in per-run figure names and in comparison legends: the run's
  /// folder for DIR/run.h5, else the file name without .h5; made unique.
  [[nodiscard]] const QStringList& runLabels() const { return m_labels; }
  /// The prefix of per-run figure names ("" with one run, "LABEL/" with several).
  [[nodiscard]] QString prefix(std::size_t run) const;

private:
  std::vector<const RunDocument*> m_runs;
  QStringList m_labels;
  std::vector<FigureSpec> m_figures;
};

/// Every figure of one run (without a prefix).
std::vector<FigureSpec> runFigures(const RunDocument& run);
/// The comparison figures of several runs, legends naming each run by its label.
std::vector<FigureSpec> comparisonFigures(const std::vector<const RunDocument*>& runs, const QStringList& labels);

/// A figure of what a plot shows, for plots that no registry builder made (a study view,
/// live training curves): "window.NAME" from the plot's object name or title; its builder
/// draws a copy of the plot's content (PlotWidget::content()), so it reads no run file.
FigureSpec contentFigure(const PlotWidget& plot);

/// The absolute, canonical path of a run file (what CSV headers and indexes print).
QString canonicalRunPath(const RunDocument& run);

/// A figure of one run: `name` in `view`, with its caption, the run file's objects it reads
/// and the analysis that wrote them; `build` draws it (the registry's and layer_head_figures'
/// figures).
FigureSpec runFigureSpec(const RunDocument& run, const QString& name, const QString& view, const QString& caption,
                         const QStringList& objects, const QString& analysis, std::function<void(PlotWidget&)> build);

/// The provenance line of figures of what `kdscope analyze` wrote.
QString fromAnalyzeText();

} // namespace kdscope::widgets
