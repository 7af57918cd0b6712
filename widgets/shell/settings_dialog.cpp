#include "widgets/shell/settings_dialog.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLineEdit>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>
#include <QVBoxLayout>

#include "widgets/figures/figure_style_editor.h"

#include <memory>

namespace kdscope::widgets {

QString Settings::defaultOutputRoot() { return QDir::home().filePath(QStringLiteral("kdscope-runs")); }

Settings Settings::load(QSettings* store) {
  std::unique_ptr<QSettings> own;
  if (store == nullptr) {
    own = std::make_unique<QSettings>();
    store = own.get();
  }
  Settings s;
  s.torchThreads = store->value(QStringLiteral("jobs/torch_threads"), s.torchThreads).toInt();
  s.blasThreads = store->value(QStringLiteral("jobs/blas_threads"), s.blasThreads).toInt();
  s.maxConcurrentJobs = std::max(1, store->value(QStringLiteral("jobs/max_concurrent"), s.maxConcurrentJobs).toInt());
  s.outputRoot = store->value(QStringLiteral("jobs/output_root"), defaultOutputRoot()).toString();
  s.attentionExamples = store->value(QStringLiteral("recording/attention_examples"), s.attentionExamples).toInt();
  s.logEvery = store->value(QStringLiteral("recording/log_every"), s.logEvery).toInt();
  s.pooling = store->value(QStringLiteral("recording/pooling"), s.pooling).toString();
  s.figure = FigureStyle::fromSettings(*store);
  return s;
}

void Settings::save(QSettings* store) const {
  std::unique_ptr<QSettings> own;
  if (store == nullptr) {
    own = std::make_unique<QSettings>();
    store = own.get();
  }
  store->setValue(QStringLiteral("jobs/torch_threads"), torchThreads);
  store->setValue(QStringLiteral("jobs/blas_threads"), blasThreads);
  store->setValue(QStringLiteral("jobs/max_concurrent"), maxConcurrentJobs);
  store->setValue(QStringLiteral("jobs/output_root"), outputRoot);
  store->setValue(QStringLiteral("recording/attention_examples"), attentionExamples);
  store->setValue(QStringLiteral("recording/log_every"), logEvery);
  store->setValue(QStringLiteral("recording/pooling"), pooling);
  figure.toSettings(*store);
  store->sync();
}

SettingsDialog::SettingsDialog(const Settings& settings, QWidget* parent) : QDialog(parent) {
  setWindowTitle(tr("Settings"));
  auto* layout = new QVBoxLayout(this);

  auto* jobs = new QGroupBox(tr("Jobs"), this);
  auto* jobsForm = new QFormLayout(jobs);
  m_torchThreads = new QSpinBox(jobs);
  m_torchThreads->setRange(0, 256);
  m_torchThreads->setSpecialValueText(tr("LibTorch default"));
  m_torchThreads->setValue(settings.torchThreads);
  m_blasThreads = new QSpinBox(jobs);
  m_blasThreads->setRange(1, 256);
  m_blasThreads->setValue(settings.blasThreads);
  m_concurrent = new QSpinBox(jobs);
  m_concurrent->setRange(1, 16);
  m_concurrent->setValue(settings.maxConcurrentJobs);
  m_concurrent->setToolTip(tr("Above 1, every job runs in a kdscope run process of its own, so its results are "
                              "the same as if it ran alone and a crash fails only that job."));
  auto* outputRow = new QHBoxLayout;
  m_outputRoot = new QLineEdit(settings.outputRoot, jobs);
  auto* browse = new QPushButton(tr("..."), jobs);
  outputRow->addWidget(m_outputRoot, 1);
  outputRow->addWidget(browse);
  jobsForm->addRow(tr("LibTorch threads"), m_torchThreads);
  jobsForm->addRow(tr("OpenBLAS threads"), m_blasThreads);
  jobsForm->addRow(tr("Jobs at once"), m_concurrent);
  jobsForm->addRow(tr("Output folder"), outputRow);
  layout->addWidget(jobs);
  connect(browse, &QPushButton::clicked, this, [this] {
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Output folder"), m_outputRoot->text());
    if (!dir.isEmpty()) {
      m_outputRoot->setText(dir);
    }
  });

  auto* recording = new QGroupBox(tr("Recording defaults for new jobs"), this);
  auto* recordingForm = new QFormLayout(recording);
  m_attention = new QSpinBox(recording);
  m_attention->setRange(0, 100000);
  m_attention->setValue(settings.attentionExamples);
  m_logEvery = new QSpinBox(recording);
  m_logEvery->setRange(1, 100000);
  m_logEvery->setValue(settings.logEvery);
  m_pooling = new QComboBox(recording);
  m_pooling->addItems({QStringLiteral("mean"), QStringLiteral("cls")});
  m_pooling->setCurrentText(settings.pooling);
  recordingForm->addRow(tr("Attention examples kept"), m_attention);
  recordingForm->addRow(tr("Log losses every (steps)"), m_logEvery);
  recordingForm->addRow(tr("Hidden-state pooling"), m_pooling);
  layout->addWidget(recording);

  m_figureStyle = new FigureStyleEditor(settings.figure, this);
  layout->addWidget(m_figureStyle);

  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
  connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
  layout->addWidget(buttons);
}

Settings SettingsDialog::settings() const {
  Settings s;
  s.torchThreads = m_torchThreads->value();
  s.blasThreads = m_blasThreads->value();
  s.maxConcurrentJobs = m_concurrent->value();
  s.outputRoot = m_outputRoot->text();
  s.attentionExamples = m_attention->value();
  s.logEvery = m_logEvery->value();
  s.pooling = m_pooling->currentText();
  s.figure = m_figureStyle->style();
  return s;
}

} // namespace kdscope::widgets
