#pragma once
/// RunBrowser: the open run files (several at once), each with its tasks and models, and the
/// recent-files list (QSettings). Opening a bad file shows the reader's message (which names
/// the file and object) and leaves the file closed. GUI thread.

#include <QStringList>
#include <QWidget>

#include <memory>
#include <vector>

#include "widgets/shell/run_document.h"

class QTreeWidget;
class QTreeWidgetItem;

namespace kdscope::widgets {

class RunBrowser : public QWidget {
  Q_OBJECT
public:
  explicit RunBrowser(QWidget* parent = nullptr);
  ~RunBrowser() override;

  static constexpr int kMaxRecent = 10;

  /// Opens a run file (or selects it when already open). On a bad file: a message box
  /// (unless quiet), lastError() says why, and false.
  bool openRun(const QString& path, bool quiet = false);
  void closeRun(const QString& path);
  /// Re-reads an open run (e.g. after `kdscope analyze` wrote to it).
  bool reloadRun(const QString& path);
  [[nodiscard]] QString lastError() const { return m_lastError; }
  [[nodiscard]] int runCount() const { return static_cast<int>(m_runs.size()); }
  [[nodiscard]] const RunDocument* run(int index) const { return m_runs.at(static_cast<std::size_t>(index)).get(); }
  [[nodiscard]] const RunDocument* currentRun() const;
  [[nodiscard]] QString currentTask() const;
  [[nodiscard]] QStringList recentFiles() const;
  [[nodiscard]] QTreeWidget* tree() const { return m_tree; }

Q_SIGNALS:
  /// The selected run or task changed (task may be empty: the run's first task).
  void selectionChanged(const kdscope::widgets::RunDocument* run, const QString& task);
  void recentFilesChanged();
  void runsChanged();

private:
  void addRecent(const QString& path);
  void fillItem(QTreeWidgetItem* item, const RunDocument& run);
  [[nodiscard]] int indexOf(const QString& path) const;

  QTreeWidget* m_tree = nullptr;
  std::vector<std::unique_ptr<RunDocument>> m_runs;
  QString m_lastError;
};

} // namespace kdscope::widgets
