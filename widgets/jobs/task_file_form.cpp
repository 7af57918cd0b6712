#include "widgets/jobs/task_file_form.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QJsonArray>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QThread>
#include <QTimer>

#include <vector>

#include "core/data/task_source.h"

namespace kdscope::widgets {

namespace {

const QStringList kFormats = {QStringLiteral("auto"), QStringLiteral("jsonl"), QStringLiteral("csv"),
                              QStringLiteral("tsv"),  QStringLiteral("npy"),   QStringLiteral("h5")};
const QStringList kLabelKinds = {QStringLiteral("auto"), QStringLiteral("name"), QStringLiteral("integer")};

} // namespace

TaskFileForm::TaskFileForm(QWidget* parent) : QGroupBox(tr("Task from your own file"), parent) {
  setObjectName(QStringLiteral("taskFileForm"));
  const core::TaskSpec defaults;
  auto* form = new QFormLayout(this);
  m_name = new QLineEdit(this);
  m_name->setPlaceholderText(tr("task name, e.g. my-reviews"));
  form->addRow(tr("Name"), m_name);
  m_file = addPath(form, tr("Data file"),
                   tr("Task files (*.jsonl *.ndjson *.json *.csv *.tsv *.tab *.npy *.h5 *.hdf5);;All files (*)"),
                   &m_browseFile);
  m_format = new QComboBox(this);
  m_format->addItems(kFormats);
  form->addRow(tr("Format"), m_format);
  m_evalFile = addPath(form, tr("Eval file"), tr("Task files (*.jsonl *.ndjson *.json *.csv *.tsv *.tab);;All files (*)"),
                       nullptr);
  m_textField = new QLineEdit(QString::fromStdString(defaults.textField), this);
  form->addRow(tr("Text field"), m_textField);
  m_pairField = new QLineEdit(this);
  m_pairField->setPlaceholderText(tr("optional second text (sentence pairs)"));
  form->addRow(tr("Text pair field"), m_pairField);
  m_featureFields = new QLineEdit(this);
  m_featureFields->setPlaceholderText(tr("vector task: columns, comma-separated"));
  form->addRow(tr("Feature fields"), m_featureFields);
  m_labelField = new QLineEdit(QString::fromStdString(defaults.labelField), this);
  form->addRow(tr("Label field"), m_labelField);
  m_idField = new QLineEdit(this);
  form->addRow(tr("Id field"), m_idField);
  m_splitField = new QLineEdit(this);
  m_splitField->setPlaceholderText(tr("optional: train / dev / test column"));
  form->addRow(tr("Split field"), m_splitField);
  m_labelKind = new QComboBox(this);
  m_labelKind->addItems(kLabelKinds);
  form->addRow(tr("Labels are"), m_labelKind);
  m_numClasses = new QSpinBox(this);
  m_numClasses->setRange(0, 1'000'000);
  m_numClasses->setSpecialValueText(tr("from the labels"));
  form->addRow(tr("Classes"), m_numClasses);
  m_h5Dataset = new QLineEdit(this);
  m_h5Dataset->setPlaceholderText(tr(".h5 arrays: dataset, e.g. /features"));
  form->addRow(tr("HDF5 dataset"), m_h5Dataset);
  m_labelFile = addPath(form, tr("Label file"), tr("Label files (*.txt *.csv);;All files (*)"), nullptr);
  m_labelColumn = new QLineEdit(this);
  m_labelColumn->setPlaceholderText(tr("label file as CSV: its column"));
  form->addRow(tr("Label column"), m_labelColumn);
  m_vocab = addPath(form, tr("WordPiece vocab"), tr("Vocabularies (*.txt);;All files (*)"), nullptr);
  m_vocab->setPlaceholderText(tr("empty: KDScope's word tokenizer"));
  m_lowerCase = new QCheckBox(tr("lower-case (uncased vocabulary)"), this);
  m_lowerCase->setChecked(defaults.lowerCase);
  form->addRow(QString(), m_lowerCase);
  auto* row = new QHBoxLayout;
  m_check = new QPushButton(tr("Check data"), this);
  m_check->setToolTip(tr("Read every row now, as `kdscope run` will before training"));
  m_status = new QLabel(this);
  m_status->setWordWrap(true);
  row->addWidget(m_check);
  row->addWidget(m_status, 1);
  form->addRow(row);

  for (QLineEdit* edit : {m_name, m_file, m_evalFile, m_textField, m_pairField, m_featureFields, m_labelField, m_idField,
                          m_splitField, m_h5Dataset, m_labelFile, m_labelColumn, m_vocab}) {
    connect(edit, &QLineEdit::textChanged, this, &TaskFileForm::onEdited);
  }
  connect(m_format, &QComboBox::currentIndexChanged, this, &TaskFileForm::onEdited);
  connect(m_labelKind, &QComboBox::currentIndexChanged, this, &TaskFileForm::onEdited);
  connect(m_numClasses, &QSpinBox::valueChanged, this, &TaskFileForm::onEdited);
  connect(m_lowerCase, &QCheckBox::toggled, this, &TaskFileForm::onEdited);
  connect(m_check, &QPushButton::clicked, this, [this] {
    if (checking()) {
      cancelCheck();
    } else {
      Q_EMIT checkRequested();
    }
  });
}

TaskFileForm::~TaskFileForm() {
  cancelCheck(); // a running reader finishes on its own and deletes its thread
}

QLineEdit* TaskFileForm::addPath(QFormLayout* form, const QString& label, const QString& filter, QPushButton** button) {
  auto* edit = new QLineEdit(this);
  auto* browse = new QPushButton(tr("Browse..."), this);
  auto* row = new QHBoxLayout;
  row->addWidget(edit, 1);
  row->addWidget(browse);
  form->addRow(label, row);
  connect(browse, &QPushButton::clicked, this, [this, edit, label, filter] {
    const QString path = chooseFile(label, filter);
    if (!path.isEmpty()) {
      edit->setText(relativeToBase(path)); // textChanged -> onEdited
    }
  });
  if (button != nullptr) {
    *button = browse;
  }
  return edit;
}

QString TaskFileForm::chooseFile(const QString& title, const QString& filter) const {
  if (m_chooser) {
    return m_chooser(title, filter);
  }
  return QFileDialog::getOpenFileName(const_cast<TaskFileForm*>(this), title, m_baseDir, filter);
}

QString TaskFileForm::relativeToBase(const QString& path) const {
  const QString absolute = QFileInfo(path).absoluteFilePath();
  if (m_baseDir.isEmpty()) {
    return absolute; // no job file yet: nothing to be relative to
  }
  const QString relative = QDir(m_baseDir).relativeFilePath(absolute);
  return relative.startsWith(QStringLiteral("..")) ? absolute : relative;
}

void TaskFileForm::onEdited() {
  if (!m_syncing) {
    Q_EMIT changed();
  }
}

bool TaskFileForm::hasFile() const { return !m_file->text().trimmed().isEmpty(); }

void TaskFileForm::setTaskObject(const QJsonObject& task) {
  m_syncing = true;
  m_shown = task;
  const core::TaskSpec d;
  const auto text = [&](const char* key, const std::string& fallback) {
    return task.value(QLatin1String(key)).toString(QString::fromStdString(fallback));
  };
  m_name->setText(text("name", ""));
  m_file->setText(text("file", d.file));
  m_format->setCurrentText(text("format", d.format));
  m_evalFile->setText(text("eval_file", d.evalFile));
  m_textField->setText(text("text_field", d.textField));
  m_pairField->setText(text("text_pair_field", d.textPairField));
  QStringList features;
  for (const QJsonValue& v : task.value(QStringLiteral("feature_fields")).toArray()) {
    features << v.toString();
  }
  m_featureFields->setText(features.join(QStringLiteral(", ")));
  m_labelField->setText(text("label_field", d.labelField));
  m_idField->setText(text("id_field", d.idField));
  m_splitField->setText(text("split_field", d.splitField));
  m_labelKind->setCurrentText(text("label_kind", d.labelKind));
  m_numClasses->setValue(task.value(QStringLiteral("num_classes")).toInt(d.numClasses));
  m_h5Dataset->setText(text("h5_dataset", d.h5Dataset));
  m_labelFile->setText(text("label_file", d.labelFile));
  m_labelColumn->setText(text("label_column", d.labelColumn));
  m_vocab->setText(text("vocab", d.vocab));
  m_lowerCase->setChecked(task.value(QStringLiteral("lower_case")).toBool(d.lowerCase));
  m_syncing = false;
}

QJsonObject TaskFileForm::taskObject() const {
  if (!hasFile()) {
    return {};
  }
  const core::TaskSpec d;
  QJsonObject task = m_shown;
  const auto put = [&](const char* key, const QString& value, const std::string& fallback) {
    const QString v = value.trimmed();
    if (v == QString::fromStdString(fallback)) {
      task.remove(QLatin1String(key));
    } else {
      task[QLatin1String(key)] = v;
    }
  };
  task[QStringLiteral("name")] = m_name->text().trimmed();
  put("file", m_file->text(), d.file);
  put("format", m_format->currentText(), d.format);
  put("eval_file", m_evalFile->text(), d.evalFile);
  put("text_field", m_textField->text(), d.textField);
  put("text_pair_field", m_pairField->text(), d.textPairField);
  QJsonArray features;
  for (const QString& f : m_featureFields->text().split(QLatin1Char(','), Qt::SkipEmptyParts)) {
    if (!f.trimmed().isEmpty()) {
      features.append(f.trimmed());
    }
  }
  if (features.isEmpty()) {
    task.remove(QStringLiteral("feature_fields"));
  } else {
    task[QStringLiteral("feature_fields")] = features;
    task.remove(QStringLiteral("text_field")); // a vector task: the default text field does not apply
  }
  put("label_field", m_labelField->text(), d.labelField);
  put("id_field", m_idField->text(), d.idField);
  put("split_field", m_splitField->text(), d.splitField);
  put("label_kind", m_labelKind->currentText(), d.labelKind);
  if (m_numClasses->value() == d.numClasses) {
    task.remove(QStringLiteral("num_classes"));
  } else {
    task[QStringLiteral("num_classes")] = m_numClasses->value();
  }
  put("h5_dataset", m_h5Dataset->text(), d.h5Dataset);
  put("label_file", m_labelFile->text(), d.labelFile);
  put("label_column", m_labelColumn->text(), d.labelColumn);
  put("vocab", m_vocab->text(), d.vocab);
  if (m_lowerCase->isChecked() == d.lowerCase) {
    task.remove(QStringLiteral("lower_case"));
  } else {
    task[QStringLiteral("lower_case")] = m_lowerCase->isChecked();
  }
  return task;
}

void TaskFileForm::checkData(const core::JobSpec& job) {
  if (checking()) {
    return;
  }
  auto result = std::make_shared<std::vector<core::JobIssue>>();
  auto failure = std::make_shared<QString>();
  auto stopped = std::make_shared<bool>(false);
  m_cancel = core::CancelToken();
  m_rowsRead = std::make_shared<std::atomic<std::size_t>>(0);
  // Runs on the checker thread: a copy of the job, the token and the row counter (shared),
  // the result written there and read on the GUI thread only after the thread has finished.
  m_thread = QThread::create([job, result, failure, stopped, cancel = m_cancel, rows = m_rowsRead] {
    core::TaskReadControl control;
    control.cancel = &cancel;
    control.progress = [rows](std::size_t read, const std::string&) { rows->store(read, std::memory_order_relaxed); };
    try {
      *result = core::checkTaskFiles(job, /*readRows=*/true, control);
      *stopped = cancel.cancelled();
    } catch (const std::exception& e) {
      *failure = QString::fromUtf8(e.what());
    }
  });
  m_generation = std::make_shared<int>(0);
  const std::weak_ptr<int> generation = m_generation;
  QThread* thread = m_thread;
  const auto rows = m_rowsRead;
  connect(thread, &QThread::finished, thread, &QObject::deleteLater);
  connect(thread, &QThread::finished, this, [this, thread, generation, result, failure, stopped, rows] {
    if (generation.expired() || m_thread != thread) {
      // Stopped (cancelCheck): the result is dropped; the reader has returned.
      m_status->setText(tr("check stopped after %L1 rows").arg(static_cast<qulonglong>(rows->load())));
      Q_EMIT checkStopped(static_cast<qulonglong>(rows->load()));
      return;
    }
    m_thread = nullptr;
    m_progressTimer->stop();
    m_check->setText(tr("Check data"));
    QStringList lines;
    for (const core::JobIssue& issue : *result) {
      lines << QString::fromStdString(issue.str());
    }
    if (!failure->isEmpty()) {
      lines << *failure;
    }
    if (*stopped) {
      lines << tr("the check was stopped");
    }
    m_status->setText(lines.isEmpty() ? tr("<span style='color:#009E73'>every row reads</span>")
                                      : tr("<span style='color:#D55E00'>%1</span>").arg(lines.first().toHtmlEscaped()));
    Q_EMIT checked(lines);
  });
  m_check->setText(tr("Stop checking"));
  m_status->setText(tr("reading every row..."));
  if (m_progressTimer == nullptr) {
    m_progressTimer = new QTimer(this);
    m_progressTimer->setInterval(200);
    connect(m_progressTimer, &QTimer::timeout, this, [this] {
      if (checking() && m_rowsRead) {
        m_status->setText(tr("reading every row... %L1 rows read").arg(static_cast<qulonglong>(m_rowsRead->load())));
      }
    });
  }
  m_progressTimer->start();
  thread->start(QThread::LowPriority);
}

void TaskFileForm::cancelCheck() {
  if (!checking()) {
    return;
  }
  m_cancel.cancel(); // the reader stops at its next poll
  m_thread = nullptr; // the thread deletes itself when the reader returns
  m_generation.reset();
  if (m_progressTimer != nullptr) {
    m_progressTimer->stop();
  }
  m_check->setText(tr("Check data"));
  m_status->setText(tr("stopping the check..."));
}

} // namespace kdscope::widgets
