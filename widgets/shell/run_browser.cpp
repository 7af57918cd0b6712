#include "widgets/shell/run_browser.h"

#include <QFileInfo>
#include <QHeaderView>
#include <QMessageBox>
#include <QSettings>
#include <QTreeWidget>
#include <QVBoxLayout>

#include <exception>

namespace kdscope::widgets {

namespace {
constexpr int kRunIndexRole = Qt::UserRole + 1;
constexpr int kTaskRole = Qt::UserRole + 2;
const QString kRecentKey = QStringLiteral("runs/recent");
} // namespace

RunBrowser::RunBrowser(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  m_tree = new QTreeWidget(this);
  m_tree->setObjectName(QStringLiteral("runTree"));
  m_tree->setHeaderLabels({tr("Run / task / model"), tr("Status / accuracy")});
  m_tree->header()->setSectionResizeMode(0, QHeaderView::Stretch);
  layout->addWidget(m_tree);
  connect(m_tree, &QTreeWidget::currentItemChanged, this, [this](QTreeWidgetItem* current) {
    if (current == nullptr) {
      Q_EMIT selectionChanged(nullptr, QString());
      return;
    }
    Q_EMIT selectionChanged(currentRun(), currentTask());
  });
}

RunBrowser::~RunBrowser() = default;

int RunBrowser::indexOf(const QString& path) const {
  const QString canonical = QFileInfo(path).absoluteFilePath();
  for (std::size_t i = 0; i < m_runs.size(); ++i) {
    if (QFileInfo(m_runs[i]->path()).absoluteFilePath() == canonical) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

void RunBrowser::fillItem(QTreeWidgetItem* item, const RunDocument& run) {
  qDeleteAll(item->takeChildren());
  const core::RunSummary& summary = run.summary();
  item->setText(0, run.displayName());
  item->setText(1, QString::fromStdString(summary.status));
  item->setToolTip(0, run.path());
  item->setToolTip(1, QString::fromStdString(summary.statusMessage));
  for (const core::TaskSummary& task : summary.tasks) {
    auto* taskItem = new QTreeWidgetItem(item, {QString::fromStdString(task.name),
                                                tr("%1 classes, %2 eval").arg(task.numClasses).arg(task.evalExamples)});
    taskItem->setData(0, kTaskRole, QString::fromStdString(task.name));
    for (const core::ModelSummary& model : task.models) {
      auto* modelItem = new QTreeWidgetItem(
          taskItem, {QStringLiteral("%1 (%2)").arg(QString::fromStdString(model.name), QString::fromStdString(model.role)),
                     model.evalAccuracy >= 0 ? QString::number(model.evalAccuracy, 'f', 4) : QStringLiteral("-")});
      modelItem->setData(0, kTaskRole, QString::fromStdString(task.name));
      modelItem->setToolTip(0, QString::fromStdString(model.architectureJson));
      if (model.evalAccuracy >= 0) {
        // The browser shows the point estimate only; where its interval is.
        modelItem->setToolTip(1, tr("eval accuracy on %1 examples (point estimate; its 95% interval: the Overview "
                                    "and Tasks views, or kdscope info, once the run is analysed)")
                                     .arg(task.evalExamples));
      }
    }
  }
  item->setExpanded(true);
}

bool RunBrowser::openRun(const QString& path, bool quiet) {
  m_lastError.clear();
  const int existing = indexOf(path);
  if (existing >= 0) {
    m_tree->setCurrentItem(m_tree->topLevelItem(existing));
    return true;
  }
  std::unique_ptr<RunDocument> run;
  try {
    run = std::make_unique<RunDocument>(path);
  } catch (const std::exception& error) {
    m_lastError = QString::fromUtf8(error.what());
  } catch (...) {
    m_lastError = tr("%1: unknown error while reading").arg(path);
  }
  if (!run) {
    if (!quiet) {
      auto* box = new QMessageBox(QMessageBox::Warning, tr("Cannot open run"),
                                  tr("Cannot open %1\n\n%2").arg(path, m_lastError), QMessageBox::Ok, this);
      box->setObjectName(QStringLiteral("openRunError"));
      box->setAttribute(Qt::WA_DeleteOnClose);
      box->open(); // window-modal; no nested event loop
    }
    return false;
  }
  auto* item = new QTreeWidgetItem(m_tree);
  item->setData(0, kRunIndexRole, static_cast<int>(m_runs.size()));
  fillItem(item, *run);
  m_runs.push_back(std::move(run));
  addRecent(path);
  Q_EMIT runsChanged();
  m_tree->setCurrentItem(item);
  return true;
}

bool RunBrowser::reloadRun(const QString& path) {
  const int index = indexOf(path);
  if (index < 0) {
    return openRun(path);
  }
  try {
    auto run = std::make_unique<RunDocument>(path);
    fillItem(m_tree->topLevelItem(index), *run);
    m_runs[static_cast<std::size_t>(index)] = std::move(run);
  } catch (const std::exception& error) {
    m_lastError = QString::fromUtf8(error.what());
    return false;
  }
  Q_EMIT runsChanged();
  Q_EMIT selectionChanged(currentRun(), currentTask());
  return true;
}

void RunBrowser::closeRun(const QString& path) {
  const int index = indexOf(path);
  if (index < 0) {
    return;
  }
  // Tell the views first: they hold a pointer to the document.
  Q_EMIT selectionChanged(nullptr, QString());
  {
    const QSignalBlocker block(m_tree); // no selection signal while the item and run go
    delete m_tree->takeTopLevelItem(index);
    m_runs.erase(m_runs.begin() + index);
  }
  for (int i = 0; i < m_tree->topLevelItemCount(); ++i) {
    m_tree->topLevelItem(i)->setData(0, kRunIndexRole, i);
  }
  Q_EMIT runsChanged();
  Q_EMIT selectionChanged(currentRun(), currentTask());
}

const RunDocument* RunBrowser::currentRun() const {
  QTreeWidgetItem* item = m_tree->currentItem();
  while (item != nullptr && item->parent() != nullptr) {
    item = item->parent();
  }
  if (item == nullptr) {
    return m_runs.empty() ? nullptr : m_runs.front().get();
  }
  const int index = m_tree->indexOfTopLevelItem(item);
  return index >= 0 && index < runCount() ? m_runs[static_cast<std::size_t>(index)].get() : nullptr;
}

QString RunBrowser::currentTask() const {
  const QTreeWidgetItem* item = m_tree->currentItem();
  return item == nullptr ? QString() : item->data(0, kTaskRole).toString();
}

QStringList RunBrowser::recentFiles() const { return QSettings().value(kRecentKey).toStringList(); }

void RunBrowser::addRecent(const QString& path) {
  QSettings settings;
  QStringList recent = settings.value(kRecentKey).toStringList();
  const QString absolute = QFileInfo(path).absoluteFilePath();
  recent.removeAll(absolute);
  recent.prepend(absolute);
  while (recent.size() > kMaxRecent) {
    recent.removeLast();
  }
  settings.setValue(kRecentKey, recent);
  Q_EMIT recentFilesChanged();
}

} // namespace kdscope::widgets
