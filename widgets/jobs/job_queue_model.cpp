#include "widgets/jobs/job_queue_model.h"

#include <QColor>

#include <cmath>

namespace kdscope::widgets {

QString toString(JobState state) {
  switch (state) {
  case JobState::Queued:
    return QStringLiteral("Queued");
  case JobState::Running:
    return QStringLiteral("Running");
  case JobState::Succeeded:
    return QStringLiteral("Succeeded");
  case JobState::Failed:
    return QStringLiteral("Failed");
  case JobState::Cancelled:
    return QStringLiteral("Cancelled");
  }
  return {};
}

JobQueueModel::JobQueueModel(QObject* parent) : QAbstractTableModel(parent) {}

int JobQueueModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(m_jobs.size());
}

int JobQueueModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QString JobQueueModel::formatDuration(double seconds) {
  if (seconds < 0 || !std::isfinite(seconds)) {
    return QStringLiteral("-");
  }
  const long s = std::lround(seconds);
  if (s >= 3600) {
    return QStringLiteral("%1:%2:%3")
        .arg(s / 3600)
        .arg((s / 60) % 60, 2, 10, QLatin1Char('0'))
        .arg(s % 60, 2, 10, QLatin1Char('0'));
  }
  return QStringLiteral("%1:%2").arg(s / 60).arg(s % 60, 2, 10, QLatin1Char('0'));
}

QVariant JobQueueModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() < 0 || index.row() >= rowCount() || index.column() < 0 ||
      index.column() >= ColumnCount) {
    return {};
  }
  const JobEntry& job = m_jobs[static_cast<std::size_t>(index.row())];
  if (role == kJobIdRole) {
    return job.id;
  }
  if (role == kFractionRole) {
    return job.fraction;
  }
  if (role == Qt::ToolTipRole) {
    QString tip = job.name + QStringLiteral(": ") + toString(job.state);
    if (!job.task.isEmpty()) {
      tip += QStringLiteral("\n%1 / %2").arg(job.task, job.model);
    }
    if (!job.message.isEmpty()) {
      tip += QStringLiteral("\n") + job.message;
    }
    if (!job.runPath.isEmpty()) {
      tip += QStringLiteral("\n") + job.runPath;
    }
    return tip;
  }
  if (role == Qt::ForegroundRole && index.column() == ColStatus) {
    if (job.state == JobState::Failed) {
      return QColor(213, 94, 0);
    }
    return {};
  }
  if (role != Qt::DisplayRole) {
    return {};
  }
  switch (index.column()) {
  case ColName:
    return job.name;
  case ColStatus:
    return toString(job.state);
  case ColProgress:
    return QStringLiteral("%1%").arg(std::lround(job.fraction * 100.0));
  case ColEpoch:
    return job.epochs > 0 ? QStringLiteral("%1/%2").arg(job.epoch).arg(job.epochs) : QStringLiteral("-");
  case ColStep:
    return job.steps > 0 ? QStringLiteral("%1/%2").arg(job.step).arg(job.steps) : QStringLiteral("-");
  case ColLoss:
    return job.hasLoss ? QString::number(job.loss, 'f', 4) : QStringLiteral("-");
  case ColTimeLeft:
    return job.state == JobState::Running ? formatDuration(job.timeLeftSeconds) : QStringLiteral("-");
  default:
    return {};
  }
}

QVariant JobQueueModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (role != Qt::DisplayRole) {
    return {};
  }
  if (orientation == Qt::Vertical) {
    return section + 1;
  }
  static const char* kNames[] = {"Job", "Status", "Progress", "Epoch", "Step", "Loss", "Time left"};
  return section >= 0 && section < ColumnCount ? tr(kNames[section]) : QVariant();
}

bool JobQueueModel::moveRows(const QModelIndex& sourceParent, int sourceRow, int count,
                             const QModelIndex& destinationParent, int destinationChild) {
  if (sourceParent.isValid() || destinationParent.isValid() || count != 1 || sourceRow < 0 || sourceRow >= rowCount() ||
      destinationChild < 0 || destinationChild > rowCount() || destinationChild == sourceRow ||
      destinationChild == sourceRow + 1) {
    return false;
  }
  beginMoveRows({}, sourceRow, sourceRow, {}, destinationChild);
  JobEntry entry = std::move(m_jobs[static_cast<std::size_t>(sourceRow)]);
  m_jobs.erase(m_jobs.begin() + sourceRow);
  const int insertAt = destinationChild > sourceRow ? destinationChild - 1 : destinationChild;
  m_jobs.insert(m_jobs.begin() + insertAt, std::move(entry));
  endMoveRows();
  return true;
}

bool JobQueueModel::moveJob(int from, int to) {
  if (from < 0 || from >= rowCount() || to < 0 || to >= rowCount() || from == to) {
    return false;
  }
  // moveRows takes the destination before which the row lands.
  return moveRows({}, from, 1, {}, to > from ? to + 1 : to);
}

bool JobQueueModel::removeRows(int row, int count, const QModelIndex& parent) {
  if (parent.isValid() || row < 0 || count < 1 || row + count > rowCount()) {
    return false;
  }
  for (int r = row; r < row + count; ++r) {
    if (m_jobs[static_cast<std::size_t>(r)].state == JobState::Running) {
      return false;
    }
  }
  beginRemoveRows({}, row, row + count - 1);
  m_jobs.erase(m_jobs.begin() + row, m_jobs.begin() + row + count);
  endRemoveRows();
  return true;
}

bool JobQueueModel::removeJob(int row) { return removeRows(row, 1); }

int JobQueueModel::addJob(const core::JobSpec& spec, const QString& outDir) {
  JobEntry entry;
  entry.id = m_nextId++;
  entry.name = QString::fromStdString(spec.name);
  entry.spec = spec;
  entry.outDir = outDir;
  const int row = rowCount();
  beginInsertRows({}, row, row);
  m_jobs.push_back(std::move(entry));
  endInsertRows();
  return m_jobs.back().id;
}

int JobQueueModel::rowOf(int jobId) const {
  for (std::size_t i = 0; i < m_jobs.size(); ++i) {
    if (m_jobs[i].id == jobId) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

const JobEntry* JobQueueModel::job(int jobId) const {
  const int row = rowOf(jobId);
  return row < 0 ? nullptr : &m_jobs[static_cast<std::size_t>(row)];
}

void JobQueueModel::update(const JobEntry& entry) {
  const int row = rowOf(entry.id);
  if (row < 0) {
    return;
  }
  m_jobs[static_cast<std::size_t>(row)] = entry;
  Q_EMIT dataChanged(index(row, 0), index(row, ColumnCount - 1));
}

int JobQueueModel::nextQueued() const {
  for (const JobEntry& job : m_jobs) {
    if (job.state == JobState::Queued) {
      return job.id;
    }
  }
  return -1;
}

} // namespace kdscope::widgets
