#include "widgets/views/study_slurm_dialog.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QFontDatabase>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QTimer>
#include <QVBoxLayout>

#include "core/study/slurm_script.h"
#include "core/study/study_spec.h"
#include "widgets/jobs/job_queue.h"

namespace kdscope::widgets {

namespace {

QLineEdit* lineWithBrowse(QWidget* parent, QFormLayout* form, const QString& label, QPushButton** browse) {
  auto* row = new QHBoxLayout();
  auto* edit = new QLineEdit(parent);
  row->addWidget(edit, 1);
  *browse = new QPushButton(QObject::tr("Browse..."), parent);
  row->addWidget(*browse);
  form->addRow(label, row);
  return edit;
}

} // namespace

StudySlurmDialog::StudySlurmDialog(QWidget* parent) : QDialog(parent) {
  setWindowTitle(tr("Slurm scripts for a study"));
  auto* layout = new QVBoxLayout(this);
  auto* intro = new QLabel(tr("Writes OUT/slurm/: the teacher job, a job array of one task per cell that waits for it, "
                              "and a merge job, with submit.sh to submit them in order (docs/studies.md, \"Running "
                              "on Slurm\"). The study file, OUT and kdscope must be at the same paths on the nodes. "
                              "Empty resources take the cluster's defaults."),
                           this);
  intro->setWordWrap(true);
  layout->addWidget(intro);
  auto* form = new QFormLayout();
  QPushButton* browseStudy = nullptr;
  QPushButton* browseOut = nullptr;
  m_study = lineWithBrowse(this, form, tr("Study file:"), &browseStudy);
  m_out = lineWithBrowse(this, form, tr("Output folder (--out):"), &browseOut);
  m_partition = new QLineEdit(this);
  m_partition->setPlaceholderText(tr("the cluster's default"));
  form->addRow(tr("Partition:"), m_partition);
  m_account = new QLineEdit(this);
  m_account->setPlaceholderText(tr("your default"));
  form->addRow(tr("Account:"), m_account);
  m_time = new QLineEdit(this);
  m_time->setPlaceholderText(tr("e.g. 2:00:00 (the partition's default)"));
  form->addRow(tr("Time limit per job:"), m_time);
  m_mem = new QLineEdit(this);
  m_mem->setPlaceholderText(tr("e.g. 4G (the partition's default)"));
  form->addRow(tr("Memory per job:"), m_mem);
  m_cpus = new QSpinBox(this);
  m_cpus->setRange(1, 1024);
  m_cpus->setValue(1);
  m_cpus->setToolTip(tr("CPUs of the teacher job and of each cell; each runs its threads on them"));
  form->addRow(tr("CPUs per task:"), m_cpus);
  m_arrayLimit = new QSpinBox(this);
  m_arrayLimit->setRange(0, 100000);
  m_arrayLimit->setSpecialValueText(tr("no limit"));
  form->addRow(tr("Cells at once:"), m_arrayLimit);
  m_executable = new QLineEdit(this);
  const QString self = JobQueue::defaultExecutable();
  m_executable->setText(self.isEmpty() ? QStringLiteral("kdscope") : self);
  m_executable->setToolTip(tr("The kdscope the jobs run, as the nodes see it"));
  form->addRow(tr("kdscope executable:"), m_executable);
  layout->addLayout(form);

  auto* previewRow = new QHBoxLayout();
  previewRow->addWidget(new QLabel(tr("Preview:"), this));
  m_which = new QComboBox(this);
  previewRow->addWidget(m_which, 1);
  layout->addLayout(previewRow);
  m_preview = new QPlainTextEdit(this);
  m_preview->setReadOnly(true);
  m_preview->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
  m_preview->setMinimumSize(560, 220);
  layout->addWidget(m_preview, 1);
  m_message = new QLabel(this);
  m_message->setWordWrap(true);
  m_message->setTextInteractionFlags(Qt::TextSelectableByMouse);
  layout->addWidget(m_message);
  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Close, this);
  m_write = buttons->addButton(tr("Write scripts"), QDialogButtonBox::ActionRole);
  m_write->setEnabled(false);
  layout->addWidget(buttons);

  m_debounce = new QTimer(this);
  m_debounce->setSingleShot(true);
  m_debounce->setInterval(250);
  connect(m_debounce, &QTimer::timeout, this, [this] { updatePreview(); });
  for (QLineEdit* edit : {m_study, m_out, m_partition, m_account, m_time, m_mem, m_executable}) {
    connect(edit, &QLineEdit::textChanged, m_debounce, qOverload<>(&QTimer::start));
  }
  for (QSpinBox* spin : {m_cpus, m_arrayLimit}) {
    connect(spin, &QSpinBox::valueChanged, m_debounce, qOverload<>(&QTimer::start));
  }
  connect(m_which, &QComboBox::currentIndexChanged, this, [this] { updatePreview(); });
  connect(browseStudy, &QPushButton::clicked, this, &StudySlurmDialog::onBrowseStudy);
  connect(browseOut, &QPushButton::clicked, this, &StudySlurmDialog::onBrowseOut);
  connect(m_write, &QPushButton::clicked, this, [this] { writeScripts(); });
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
  updatePreview();
}

StudySlurmDialog::~StudySlurmDialog() = default;

void StudySlurmDialog::setStudyFile(const QString& path) { m_study->setText(path); }

void StudySlurmDialog::setOutDir(const QString& dir) { m_out->setText(dir); }

QString StudySlurmDialog::message() const { return m_message->text(); }

void StudySlurmDialog::showMessage(const QString& text, bool problem) {
  m_message->setText(text);
  m_message->setStyleSheet(problem ? QStringLiteral("color: #b00020;") : QString());
}

core::SlurmOptions StudySlurmDialog::slurmOptions() const {
  core::SlurmOptions options;
  options.executable = m_executable->text().trimmed().toStdString();
  options.studyPath = m_study->text().trimmed().toStdString();
  options.outDir = m_out->text().trimmed().toStdString();
  options.partition = m_partition->text().trimmed().toStdString();
  options.account = m_account->text().trimmed().toStdString();
  options.time = m_time->text().trimmed().toStdString();
  options.mem = m_mem->text().trimmed().toStdString();
  options.cpusPerTask = m_cpus->value();
  options.arrayLimit = m_arrayLimit->value();
  return options;
}

bool StudySlurmDialog::updatePreview() {
  m_debounce->stop();
  m_write->setEnabled(false);
  const QString studyPath = m_study->text().trimmed();
  if (studyPath != m_parsedPath) {
    m_parsedPath = studyPath;
    m_spec.reset();
    m_studyIssues.clear();
    if (!studyPath.isEmpty()) {
      auto parsed = core::loadStudyFile(studyPath.toStdString());
      if (parsed.study) {
        m_spec = std::make_unique<core::StudySpec>(std::move(*parsed.study));
      } else {
        QStringList lines;
        for (const auto& issue : parsed.issues) {
          lines << QString::fromStdString(issue.str());
        }
        m_studyIssues = tr("%1 is not a valid study:\n%2").arg(studyPath, lines.join(QLatin1Char('\n')));
      }
    }
  }
  if (studyPath.isEmpty() || m_out->text().trimmed().isEmpty()) {
    m_preview->clear();
    showMessage(tr("Choose the study file and its output folder."), false);
    return false;
  }
  if (!m_spec) {
    m_preview->clear();
    showMessage(m_studyIssues, true);
    return false;
  }
  const core::SlurmOptions options = slurmOptions();
  std::vector<core::SlurmFile> files;
  try {
    files = core::slurmScripts(*m_spec, options);
  } catch (const std::exception& e) {
    m_preview->clear();
    showMessage(QString::fromStdString(e.what()), true);
    return false;
  }
  const QString shown = m_which->currentText();
  m_which->blockSignals(true);
  m_which->clear();
  for (const auto& f : files) {
    m_which->addItem(QString::fromStdString(f.name));
  }
  const int keep = m_which->findText(shown);
  m_which->setCurrentIndex(keep >= 0 ? keep : std::max(0, m_which->findText(QStringLiteral("cells.sbatch"))));
  m_which->blockSignals(false);
  m_preview->setPlainText(QString::fromStdString(files[static_cast<std::size_t>(m_which->currentIndex())].text));
  showMessage(tr("Study '%1': %2 cells x %3 task(s); the array has tasks 0-%4.")
                  .arg(QString::fromStdString(m_spec->name))
                  .arg(m_spec->cells.size())
                  .arg(m_spec->tasks.size())
                  .arg(m_spec->cells.size() - 1),
              false);
  m_write->setEnabled(true);
  return true;
}

bool StudySlurmDialog::writeScripts() {
  if (!updatePreview()) {
    return false;
  }
  const core::SlurmOptions options = slurmOptions();
  try {
    core::writeSlurmScripts(*m_spec, options);
  } catch (const std::exception& e) {
    showMessage(QString::fromStdString(e.what()), true);
    return false;
  }
  showMessage(QString::fromStdString(core::slurmSubmitHowTo(*m_spec, options)), false);
  Q_EMIT written(QDir(QFileInfo(m_out->text().trimmed()).absoluteFilePath()).filePath(QStringLiteral("slurm")));
  return true;
}

void StudySlurmDialog::onBrowseStudy() {
  const QString path = QFileDialog::getOpenFileName(this, tr("Study file"), m_study->text(), tr("Study (*.json)"));
  if (!path.isEmpty()) {
    m_study->setText(path);
  }
}

void StudySlurmDialog::onBrowseOut() {
  const QString dir = QFileDialog::getExistingDirectory(this, tr("The study's output folder"), m_out->text());
  if (!dir.isEmpty()) {
    m_out->setText(dir);
  }
}

} // namespace kdscope::widgets
