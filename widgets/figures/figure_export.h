#pragma once
/// Figure export: draws registry figures (figure_registry.h) at a paper style to PDF, SVG
/// and PNG, writes beside each a CSV of the exact numbers plotted, and writes the index of a
/// figure pack. The same code serves File > Export in the window (FigureExportJob, one
/// figure per event-loop pass) and `kdscope export` (FigureExporter in a loop), so the same
/// style gives the same bytes (docs/figures.md). GUI (main) thread: it builds QWidgets,
/// which needs a QApplication (offscreen is enough).

#include <QByteArray>
#include <QDateTime>
#include <QList>
#include <QMap>
#include <QObject>
#include <QString>
#include <QStringList>

#include <functional>
#include <memory>
#include <vector>

#include "widgets/figures/figure_registry.h"
#include "widgets/figures/figure_style.h"

namespace kdscope::widgets {

class PlotWidget;
class RunDocument;

enum class FigureFormat { Pdf, Svg, Png };
QString formatSuffix(FigureFormat format);
/// "pdf", "svg" or "png" (any case); false otherwise.
bool parseFigureFormat(const QString& text, FigureFormat* format);

enum class IndexFormat { None, Markdown, Html };

/// One line of a pack index's list of what its figures are of: "LABEL: VALUE", the value
/// set as code (a path, a name) when `code` is true. Plain text: the index writer escapes it
/// for HTML and puts it between backticks for Markdown.
struct IndexSource {
  QString label;
  QString value;
  bool code = false;
};

struct ExportOptions {
  QString outDir;
  FigureStyle style;
  QList<FigureFormat> formats = {FigureFormat::Pdf, FigureFormat::Svg, FigureFormat::Png};
  bool csv = true;
  IndexFormat index = IndexFormat::None;
  // What the index says the pack is of. All empty (the default): the exporter's run files
  // ("Run: PATH (LABEL)") and `kdscope export RUN... --figure all ...`, as for run files.
  /// The index's source lines, instead of the run files (e.g. a study's name, summary file
  /// and complete cells: describeStudyExport in study_figures.h).
  std::vector<IndexSource> indexSources = {};
  /// The arguments of the command that remakes the pack that name its inputs, instead of the
  /// run files (e.g. "--study /abs/dir"); the index writes `kdscope export ARGS --figure all
  /// --style style.json --format F --out DIR --index I`.
  QString remakeInputs = {};
  /// Section headings of the index by figure view ("study"), over the built-in ones.
  QMap<QString, QString> indexViewTitles = {};
};

/// What one figure's export wrote.
struct ExportedFigure {
  QString name;
  QString view;
  QString caption;
  QStringList files; ///< paths relative to the output folder, in the order written
  QString error;     ///< empty when every file was written
};

struct ExportSummary {
  std::vector<ExportedFigure> figures;
  QString indexFile; ///< relative to the output folder; empty when none was written
  QStringList warnings; ///< e.g. the style's font family is not installed
  [[nodiscard]] int failures() const;
};

/// Builds a figure on a fresh, hidden PlotWidget in export mode (the registry's builder
/// with `style`). Throws core::InputError when the run lacks the figure's data.
std::unique_ptr<PlotWidget> buildExportPlot(const FigureSpec& spec, const FigureStyle& style);

/// The bytes of one format of a built export plot. `created` is the PDF's CreationDate.
/// Empty with `error` set when drawing fails.
QByteArray renderFigure(PlotWidget& plot, const FigureSpec& spec, const FigureStyle& style, FigureFormat format,
                        const QDateTime& created, QString* error = nullptr);

/// The CSV of a built plot: header comments (figure, caption, run files, HDF5 objects,
/// analysis, axes), then one row per point (lines: series,index,x,[x_label,]y) or per cell
/// (heatmaps: row,row_label,column,column_label,value). Numbers are the shortest decimal
/// that reads back as the same double.
QByteArray figureCsv(const PlotWidget& plot, const FigureSpec& spec);

/// The PDF CreationDate of a figure: SOURCE_DATE_EPOCH when set, else the newest
/// modification time of the run files it reads, so exporting the same files twice, from
/// the window or the command line, gives the same bytes.
QDateTime figureDate(const FigureSpec& spec);

/// The file name (without suffix) of a figure: its name, with "LABEL/" as a sub-folder.
QString figureFileStem(const QString& name);

/// Opens run files by path and exports figures of them one at a time. Used by `kdscope
/// export` in a loop and by FigureExportJob on the event loop. Owns its documents, so it
/// does not depend on what the window has open.
class FigureExporter {
public:
  /// Opens the runs; throws core::InputError for a file that is not a readable run.
  FigureExporter(const QStringList& runPaths, ExportOptions options);
  ~FigureExporter();
  FigureExporter(const FigureExporter&) = delete;
  FigureExporter& operator=(const FigureExporter&) = delete;

  [[nodiscard]] const FigureCatalog& catalog() const { return *m_catalog; }
  [[nodiscard]] const ExportOptions& options() const { return m_options; }
  /// Warnings about the style (a font family that is not installed).
  [[nodiscard]] const QStringList& warnings() const { return m_warnings; }

  /// Exports one figure (every format, and its CSV). Never throws: errors go to `error`.
  ExportedFigure exportFigure(const FigureSpec& spec);
  /// Writes the index (per options().index) of the figures exported so far, and style.json
  /// beside it. Returns the index file relative to the folder; empty for IndexFormat::None
  /// or on error (then `error` is set).
  QString writeIndex(const std::vector<ExportedFigure>& figures, QString* error = nullptr) const;
  /// Exports every figure of `specs` in order, then the index; `progress` after each.
  ExportSummary exportAll(const std::vector<FigureSpec>& specs,
                          const std::function<void(const ExportedFigure&, int done, int total)>& progress = {});

private:
  std::vector<std::unique_ptr<RunDocument>> m_documents;
  std::unique_ptr<FigureCatalog> m_catalog;
  ExportOptions m_options;
  QStringList m_warnings;
};

/// The window's export: one figure per event-loop pass (the GUI stays responsive, no nested
/// event loop), progress and the summary as signals. Lives on the GUI thread; deletes itself
/// after finished() when started with deleteWhenDone.
class FigureExportJob : public QObject {
  Q_OBJECT
public:
  /// `names`: figure names of the catalog of `runPaths` (patterns as in FigureCatalog::select).
  FigureExportJob(const QStringList& runPaths, const QStringList& names, ExportOptions options,
                  QObject* parent = nullptr);
  /// Exports these figures (e.g. contentFigure of a plot), reading no run file.
  FigureExportJob(std::vector<FigureSpec> figures, ExportOptions options, QObject* parent = nullptr);
  ~FigureExportJob() override;
  /// Opens the runs and starts; a run that cannot be opened finishes at once with an error.
  void start();
  void cancel() { m_cancelled = true; }

Q_SIGNALS:
  void progress(int done, int total, const QString& name);
  void finished(const kdscope::widgets::ExportSummary& summary, const QString& error);

private:
  void step();

  QStringList m_runPaths;
  QStringList m_names;
  ExportOptions m_options;
  std::unique_ptr<FigureExporter> m_exporter;
  std::vector<FigureSpec> m_specs;
  ExportSummary m_summary;
  std::size_t m_next = 0;
  bool m_cancelled = false;
  bool m_given = false; ///< m_specs came from the constructor
};

} // namespace kdscope::widgets
