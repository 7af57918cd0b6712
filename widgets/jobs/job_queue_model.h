#pragma once
/// JobQueueModel: the table of queued, running and finished jobs (name, status, progress,
/// epoch, step, loss, time left). Lives on the GUI thread; JobQueue drives it.

#include <QAbstractTableModel>
#include <QString>

#include <vector>

#include "core/job/job_spec.h"

namespace kdscope::widgets {

enum class JobState { Queued, Running, Succeeded, Failed, Cancelled };

QString toString(JobState state);

struct JobEntry {
  int id = 0;
  QString name;
  core::JobSpec spec;
  QString outDir;
  JobState state = JobState::Queued;
  double fraction = 0.0; ///< overall progress in [0, 1]
  QString task;
  QString model;
  int epoch = 0;
  int epochs = 0;
  long step = 0;
  long steps = 0;
  double loss = 0.0;
  bool hasLoss = false;
  double elapsedSeconds = 0.0;
  double timeLeftSeconds = -1.0; ///< -1: unknown
  QString message;               ///< failure message or last phase
  QString runPath;               ///< the run file once the job has finished
};

class JobQueueModel : public QAbstractTableModel {
  Q_OBJECT
public:
  enum Column { ColName, ColStatus, ColProgress, ColEpoch, ColStep, ColLoss, ColTimeLeft, ColumnCount };
  /// Role for the progress column: the fraction in [0, 1] as a double.
  static constexpr int kFractionRole = Qt::UserRole + 1;
  /// Role for any column: the job id.
  static constexpr int kJobIdRole = Qt::UserRole + 2;

  explicit JobQueueModel(QObject* parent = nullptr);

  [[nodiscard]] int rowCount(const QModelIndex& parent = {}) const override;
  [[nodiscard]] int columnCount(const QModelIndex& parent = {}) const override;
  [[nodiscard]] QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  [[nodiscard]] QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;
  bool moveRows(const QModelIndex& sourceParent, int sourceRow, int count, const QModelIndex& destinationParent,
                int destinationChild) override;
  bool removeRows(int row, int count, const QModelIndex& parent = {}) override;

  /// Appends a queued job; returns its id (unique for the model's lifetime).
  int addJob(const core::JobSpec& spec, const QString& outDir);
  /// Moves one row to `to` (the row index it has afterwards). False if out of range.
  bool moveJob(int from, int to);
  /// Removes a job that is not running. False if it is running or out of range.
  bool removeJob(int row);

  [[nodiscard]] int rowOf(int jobId) const; ///< -1 when absent
  [[nodiscard]] const JobEntry* job(int jobId) const;
  [[nodiscard]] const JobEntry& at(int row) const { return m_jobs.at(static_cast<std::size_t>(row)); }
  /// Replaces the entry with the same id and signals the changed row.
  void update(const JobEntry& entry);
  /// The first queued job in row order, or -1.
  [[nodiscard]] int nextQueued() const;

  static QString formatDuration(double seconds);

private:
  std::vector<JobEntry> m_jobs;
  int m_nextId = 1;
};

} // namespace kdscope::widgets
