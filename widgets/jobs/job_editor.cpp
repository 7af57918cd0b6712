#include "widgets/jobs/job_editor.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QFontDatabase>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QJsonArray>
#include <QJsonDocument>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSaveFile>
#include <QSpinBox>
#include <QSplitter>
#include <QTableWidget>
#include <QTimer>
#include <QVBoxLayout>

#include <algorithm>

#include "core/data/dataset.h"
#include "core/data/task_source.h"
#include "widgets/jobs/task_file_form.h"

namespace kdscope::widgets {

namespace {

const QStringList kTaskNames = {QStringLiteral("polarity"),      QStringLiteral("hedge"),
                                QStringLiteral("spam"),          QStringLiteral("supersense"),
                                QStringLiteral("fortune"),       QStringLiteral("fashion_mnist"),
                                QStringLiteral("digits"),        QStringLiteral("synthetic_hierarchy"),
                                QStringLiteral("synthetic_order")};

QSpinBox* spin(QWidget* parent, int lo, int hi) {
  auto* box = new QSpinBox(parent);
  box->setRange(lo, hi);
  return box;
}

QJsonObject obj(const QJsonObject& parent, const char* key) { return parent.value(QLatin1String(key)).toObject(); }

} // namespace

QString JobEditor::templateJson(int attentionExamples, int logEvery, const QString& pooling) {
  QJsonObject arch{{"type", "transformer"}, {"layers", 2}, {"heads", 2}, {"width", 64}, {"ffn", 128}};
  QJsonObject small{{"type", "transformer"}, {"layers", 1}, {"heads", 2}, {"width", 32}, {"ffn", 64}};
  QJsonObject training{{"epochs", 3}, {"batch_size", 32}, {"lr", 0.001}};
  QJsonObject root{
      {"name", "new-job"},
      {"seed", 1},
      {"tasks", QJsonArray{QJsonObject{{"name", "polarity"}, {"max_examples", 2000}}}},
      {"teacher", QJsonObject{{"architecture", arch}, {"training", training}}},
      {"students",
       QJsonArray{QJsonObject{{"name", "ce"}, {"architecture", small}, {"training", training},
                              {"objective", QJsonObject{{"lambda", 0.0}}}},
                  QJsonObject{{"name", "kd"}, {"architecture", small}, {"training", training},
                              {"objective", QJsonObject{{"lambda", 0.7}, {"temperature", 4.0}}}}}},
      {"recording", QJsonObject{{"attention_examples", attentionExamples}, {"log_every", logEvery}, {"pooling", pooling}}}};
  return QString::fromUtf8(QJsonDocument(root).toJson(QJsonDocument::Indented));
}

JobEditor::JobEditor(QWidget* parent) : QDialog(parent) {
  setWindowTitle(tr("Job editor"));
  resize(1200, 760);
  auto* layout = new QVBoxLayout(this);
  auto* split = new QSplitter(Qt::Horizontal, this);
  m_form = new QWidget(split);
  buildForm(m_form);
  auto* right = new QSplitter(Qt::Vertical, split);
  m_json = new QPlainTextEdit(right);
  m_json->setObjectName(QStringLiteral("jobJson"));
  m_json->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
  m_json->setLineWrapMode(QPlainTextEdit::NoWrap);
  auto* issuesBox = new QWidget(right);
  auto* issuesLayout = new QVBoxLayout(issuesBox);
  issuesLayout->setContentsMargins(0, 0, 0, 0);
  m_status = new QLabel(issuesBox);
  issuesLayout->addWidget(m_status);
  m_issues = new QListWidget(issuesBox);
  m_issues->setObjectName(QStringLiteral("jobIssues"));
  issuesLayout->addWidget(m_issues);
  right->setStretchFactor(0, 3);
  right->setStretchFactor(1, 1);
  split->setStretchFactor(0, 2);
  split->setStretchFactor(1, 3);
  layout->addWidget(split, 1);

  auto* buttons = new QDialogButtonBox(this);
  auto* load = buttons->addButton(tr("Load..."), QDialogButtonBox::ActionRole);
  auto* save = buttons->addButton(tr("Save..."), QDialogButtonBox::ActionRole);
  m_accept = buttons->addButton(tr("Add to queue"), QDialogButtonBox::AcceptRole);
  buttons->addButton(QDialogButtonBox::Cancel);
  layout->addWidget(buttons);
  connect(load, &QPushButton::clicked, this, &JobEditor::onLoad);
  connect(save, &QPushButton::clicked, this, &JobEditor::onSave);
  connect(buttons, &QDialogButtonBox::accepted, this, [this] {
    if (validateNow()) {
      accept();
    }
  });
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);

  m_debounce = new QTimer(this);
  m_debounce->setSingleShot(true);
  m_debounce->setInterval(kValidateDelayMs);
  connect(m_debounce, &QTimer::timeout, this, [this] { validateNow(); });
  connect(m_json, &QPlainTextEdit::textChanged, this, &JobEditor::onTextEdited);
  setJsonText(templateJson());
}

void JobEditor::buildForm(QWidget* form) {
  auto* layout = new QVBoxLayout(form);
  layout->setContentsMargins(0, 0, 0, 0);
  auto* job = new QGroupBox(tr("Job"), form);
  auto* jobForm = new QFormLayout(job);
  m_name = new QLineEdit(job);
  m_name->setObjectName(QStringLiteral("jobName"));
  m_seed = spin(job, 0, 1 << 30);
  jobForm->addRow(tr("Name"), m_name);
  jobForm->addRow(tr("Seed"), m_seed);
  m_tasks = new QListWidget(job);
  for (const QString& name : kTaskNames) {
    auto* item = new QListWidgetItem(name, m_tasks);
    item->setFlags(Qt::ItemIsEnabled | Qt::ItemIsUserCheckable);
    item->setCheckState(Qt::Unchecked);
  }
  m_tasks->setMaximumHeight(150);
  jobForm->addRow(tr("Tasks"), m_tasks);
  m_maxExamples = spin(job, 0, 10'000'000);
  m_maxExamples->setSpecialValueText(tr("all"));
  jobForm->addRow(tr("Max examples per task"), m_maxExamples);
  layout->addWidget(job);

  m_taskFile = new TaskFileForm(form);
  m_taskFile->setCheckable(false);
  layout->addWidget(m_taskFile);
  connect(m_taskFile, &TaskFileForm::changed, this, [this] { formToJson(); });
  connect(m_taskFile, &TaskFileForm::checkRequested, this, [this] {
    if (validateNow() && m_job) {
      m_taskFile->checkData(*m_job);
    }
  });
  connect(m_taskFile, &TaskFileForm::checked, this, [this](const QStringList& issues) {
    for (const QString& line : issues) {
      m_issues->addItem(line);
    }
  });

  auto* teacher = new QGroupBox(tr("Teacher"), form);
  auto* teacherForm = new QFormLayout(teacher);
  m_teacherType = new QComboBox(teacher);
  m_teacherType->addItems({QStringLiteral("transformer"), QStringLiteral("mlp")});
  m_teacherLayers = spin(teacher, 1, 48);
  m_teacherHeads = spin(teacher, 1, 64);
  m_teacherWidth = spin(teacher, 1, 4096);
  m_teacherFfn = spin(teacher, 1, 16384);
  m_teacherEpochs = spin(teacher, 1, 10000);
  m_teacherBatch = spin(teacher, 1, 65536);
  m_teacherLr = new QDoubleSpinBox(teacher);
  m_teacherLr->setDecimals(6);
  m_teacherLr->setRange(1e-6, 10.0);
  m_teacherLr->setSingleStep(1e-4);
  teacherForm->addRow(tr("Architecture"), m_teacherType);
  teacherForm->addRow(tr("Layers"), m_teacherLayers);
  teacherForm->addRow(tr("Heads"), m_teacherHeads);
  teacherForm->addRow(tr("Width"), m_teacherWidth);
  teacherForm->addRow(tr("FFN width"), m_teacherFfn);
  teacherForm->addRow(tr("Epochs"), m_teacherEpochs);
  teacherForm->addRow(tr("Batch size"), m_teacherBatch);
  teacherForm->addRow(tr("Learning rate"), m_teacherLr);
  layout->addWidget(teacher);

  auto* students = new QGroupBox(tr("Students and objectives"), form);
  auto* studentsLayout = new QVBoxLayout(students);
  m_students = new QTableWidget(0, SColumnCount, students);
  m_students->setObjectName(QStringLiteral("jobStudents"));
  m_students->setHorizontalHeaderLabels({tr("Name"), tr("Type"), tr("Layers"), tr("Heads"), tr("Width"), tr("FFN"),
                                         tr("Epochs"), tr("lambda"), tr("T"), tr("LS eps"), tr("Targets")});
  m_students->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  m_students->setToolTip(tr("lambda: weight of the KD term (0: a CE student); T: temperature; LS eps: label "
                            "smoothing of the hard-label term; Targets: full or pt (KD-pt control)"));
  studentsLayout->addWidget(m_students);
  auto* row = new QHBoxLayout;
  auto* add = new QPushButton(tr("Add student"), students);
  auto* remove = new QPushButton(tr("Remove student"), students);
  row->addWidget(add);
  row->addWidget(remove);
  row->addStretch(1);
  studentsLayout->addLayout(row);
  layout->addWidget(students, 1);

  connect(add, &QPushButton::clicked, this, [this] {
    addStudentRow(QJsonObject{{"name", QStringLiteral("student%1").arg(m_students->rowCount() + 1)},
                              {"architecture", QJsonObject{{"type", "transformer"}, {"layers", 1}, {"heads", 2},
                                                           {"width", 32}, {"ffn", 64}}},
                              {"objective", QJsonObject{{"lambda", 0.5}, {"temperature", 2.0}}}});
    formToJson();
  });
  connect(remove, &QPushButton::clicked, this, [this] {
    const int r = m_students->currentRow() >= 0 ? m_students->currentRow() : m_students->rowCount() - 1;
    if (r >= 0) {
      m_students->removeRow(r);
      formToJson();
    }
  });
  const auto changed = [this] { formToJson(); };
  connect(m_name, &QLineEdit::textEdited, this, changed);
  connect(m_seed, &QSpinBox::valueChanged, this, changed);
  connect(m_tasks, &QListWidget::itemChanged, this, changed);
  connect(m_maxExamples, &QSpinBox::valueChanged, this, changed);
  connect(m_teacherType, &QComboBox::currentIndexChanged, this, changed);
  for (QSpinBox* box : {m_teacherLayers, m_teacherHeads, m_teacherWidth, m_teacherFfn, m_teacherEpochs, m_teacherBatch}) {
    connect(box, &QSpinBox::valueChanged, this, changed);
  }
  connect(m_teacherLr, &QDoubleSpinBox::valueChanged, this, changed);
  connect(m_students, &QTableWidget::itemChanged, this, changed);
}

void JobEditor::addStudentRow(const QJsonObject& student) {
  const QSignalBlocker block(m_students);
  const int r = m_students->rowCount();
  m_students->insertRow(r);
  const QJsonObject arch = obj(student, "architecture");
  const QJsonObject training = obj(student, "training");
  const QJsonObject objective = obj(student, "objective");
  const core::JobSpec defaults;
  const core::ObjectiveSpec objectiveDefaults;
  const core::ArchitectureSpec archDefaults;
  const core::TrainingSpec trainingDefaults;
  const auto set = [&](int column, const QString& text) { m_students->setItem(r, column, new QTableWidgetItem(text)); };
  set(SName, student.value("name").toString());
  set(SType, arch.value("type").toString(QString::fromStdString(archDefaults.type)));
  set(SLayers, QString::number(arch.value("layers").toInt(archDefaults.layers)));
  set(SHeads, QString::number(arch.value("heads").toInt(archDefaults.heads)));
  set(SWidth, QString::number(arch.value("width").toInt(archDefaults.width)));
  set(SFfn, QString::number(arch.value("ffn").toInt(archDefaults.ffn)));
  set(SEpochs, QString::number(training.value("epochs").toInt(trainingDefaults.epochs)));
  set(SLambda, QString::number(objective.value("lambda").toDouble(objectiveDefaults.lambda)));
  set(STemperature, QString::number(objective.value("temperature").toDouble(objectiveDefaults.temperature)));
  set(SSmoothing, QString::number(objective.value("label_smoothing").toDouble(objectiveDefaults.labelSmoothing)));
  set(STargets, objective.value("teacher_targets").toString(QString::fromStdString(objectiveDefaults.teacherTargets)));
}

void JobEditor::setJsonText(const QString& text) {
  m_json->setPlainText(text); // textChanged -> onTextEdited
  validateNow();
}

QString JobEditor::jsonText() const { return m_json->toPlainText(); }

void JobEditor::onTextEdited() {
  if (m_syncing) {
    return;
  }
  m_debounce->start(); // restarts: validation runs kValidateDelayMs after the last edit
}

bool JobEditor::validateNow() {
  m_debounce->stop();
  const QString text = m_json->toPlainText();
  const core::JobParseResult parsed = core::parseJob(text.toStdString(), "editor");
  m_issues->clear();
  for (const core::JobIssue& issue : parsed.issues) {
    m_issues->addItem(QString::fromStdString(issue.str()));
  }
  m_job = parsed.job;
  if (m_job && !m_baseDir.isEmpty()) {
    m_job->baseDir = m_baseDir.toStdString();
  }
  // Task files must exist (as loadJobFile requires); their rows are read by "Check data".
  if (m_job && (!m_baseDir.isEmpty() || std::any_of(m_job->tasks.begin(), m_job->tasks.end(), [](const core::TaskSpec& t) {
                  return !t.file.empty() && QFileInfo(QString::fromStdString(t.file)).isAbsolute();
                }))) {
    const std::vector<core::JobIssue> missing = core::checkTaskFiles(*m_job, /*readRows=*/false);
    for (const core::JobIssue& issue : missing) {
      m_issues->addItem(QString::fromStdString(issue.str()));
    }
    if (!missing.empty()) {
      m_job.reset();
    }
  }
  m_taskFile->setBaseDir(m_baseDir);
  const bool valid = m_job.has_value();
  m_status->setText(valid ? tr("<span style='color:#009E73'>valid job</span>")
                          : tr("<span style='color:#D55E00'>%n issue(s)</span>", nullptr, m_issues->count()));
  m_accept->setEnabled(valid);
  // The form follows the text whenever the text is JSON at all.
  QJsonParseError error{};
  const QJsonDocument doc = QJsonDocument::fromJson(text.toUtf8(), &error);
  const bool isObject = error.error == QJsonParseError::NoError && doc.isObject();
  m_form->setEnabled(isObject);
  m_form->setToolTip(isObject ? QString() : tr("fix the JSON syntax to use the form"));
  if (isObject) {
    jsonToForm(doc.object());
  }
  Q_EMIT validated(valid);
  return valid;
}

QStringList JobEditor::issueLines() const {
  QStringList lines;
  for (int i = 0; i < m_issues->count(); ++i) {
    lines << m_issues->item(i)->text();
  }
  return lines;
}

void JobEditor::jsonToForm(const QJsonObject& root) {
  m_syncing = true;
  const QSignalBlocker b1(m_name), b2(m_seed), b3(m_tasks), b4(m_maxExamples), b5(m_teacherType), b6(m_teacherLayers),
      b7(m_teacherHeads), b8(m_teacherWidth), b9(m_teacherFfn), b10(m_teacherEpochs), b11(m_teacherBatch),
      b12(m_teacherLr), b13(m_students);
  const core::JobSpec defaults;
  m_name->setText(root.value("name").toString(QString::fromStdString(defaults.name)));
  m_seed->setValue(root.value("seed").toInt(static_cast<int>(defaults.seed)));
  QStringList tasks;
  int maxExamples = 0;
  QJsonObject fileTask;
  for (const QJsonValue& value : root.value("tasks").toArray()) {
    if (value.toObject().contains(QStringLiteral("file"))) {
      if (fileTask.isEmpty()) {
        fileTask = value.toObject(); // the form shows the first task read from a file
      }
      continue;
    }
    tasks << (value.isString() ? value.toString() : value.toObject().value("name").toString());
    maxExamples = std::max(maxExamples, value.toObject().value("max_examples").toInt(0));
  }
  m_taskFile->setTaskObject(fileTask);
  for (int i = 0; i < m_tasks->count(); ++i) {
    m_tasks->item(i)->setCheckState(tasks.contains(m_tasks->item(i)->text()) ? Qt::Checked : Qt::Unchecked);
  }
  m_maxExamples->setValue(maxExamples);
  const QJsonObject teacher = obj(root, "teacher");
  const QJsonObject arch = obj(teacher, "architecture");
  const QJsonObject training = obj(teacher, "training");
  m_teacherType->setCurrentText(arch.value("type").toString(QString::fromStdString(defaults.teacher.architecture.type)));
  m_teacherLayers->setValue(arch.value("layers").toInt(defaults.teacher.architecture.layers));
  m_teacherHeads->setValue(arch.value("heads").toInt(defaults.teacher.architecture.heads));
  m_teacherWidth->setValue(arch.value("width").toInt(defaults.teacher.architecture.width));
  m_teacherFfn->setValue(arch.value("ffn").toInt(defaults.teacher.architecture.ffn));
  m_teacherEpochs->setValue(training.value("epochs").toInt(defaults.teacher.training.epochs));
  m_teacherBatch->setValue(training.value("batch_size").toInt(defaults.teacher.training.batchSize));
  m_teacherLr->setValue(training.value("lr").toDouble(defaults.teacher.training.lr));
  m_students->setRowCount(0);
  for (const QJsonValue& value : root.value("students").toArray()) {
    addStudentRow(value.toObject());
  }
  m_syncing = false;
}

void JobEditor::formToJson() {
  if (m_syncing) {
    return;
  }
  QJsonParseError error{};
  const QJsonDocument doc = QJsonDocument::fromJson(m_json->toPlainText().toUtf8(), &error);
  if (error.error != QJsonParseError::NoError || !doc.isObject()) {
    return; // the form is disabled while the text is not JSON
  }
  QJsonObject root = doc.object();
  root["name"] = m_name->text();
  root["seed"] = m_seed->value();
  // Tasks: keep the objects of tasks still checked (with their other fields), add new ones.
  QJsonArray tasks;
  QMap<QString, QJsonObject> existing;
  QJsonArray fileTasks; // tasks read from files: the first is the form's, the others kept as they are
  for (const QJsonValue& value : root.value("tasks").toArray()) {
    if (value.toObject().contains(QStringLiteral("file"))) {
      fileTasks.append(value);
      continue;
    }
    existing.insert(value.toObject().value("name").toString(), value.toObject());
  }
  for (int i = 0; i < m_tasks->count(); ++i) {
    if (m_tasks->item(i)->checkState() == Qt::Checked) {
      const QString name = m_tasks->item(i)->text();
      QJsonObject task = existing.value(name, QJsonObject{{"name", name}});
      if (m_maxExamples->value() > 0) {
        task["max_examples"] = m_maxExamples->value();
      } else {
        task.remove("max_examples");
      }
      tasks.append(task);
    }
  }
  const QJsonObject formTask = m_taskFile->taskObject();
  if (!formTask.isEmpty()) {
    tasks.append(formTask);
  }
  for (qsizetype i = 1; i < fileTasks.size(); ++i) {
    tasks.append(fileTasks[i]);
  }
  root["tasks"] = tasks;
  QJsonObject teacher = obj(root, "teacher");
  QJsonObject arch = obj(teacher, "architecture");
  arch["type"] = m_teacherType->currentText();
  arch["layers"] = m_teacherLayers->value();
  arch["heads"] = m_teacherHeads->value();
  arch["width"] = m_teacherWidth->value();
  arch["ffn"] = m_teacherFfn->value();
  QJsonObject training = obj(teacher, "training");
  training["epochs"] = m_teacherEpochs->value();
  training["batch_size"] = m_teacherBatch->value();
  training["lr"] = m_teacherLr->value();
  teacher["architecture"] = arch;
  teacher["training"] = training;
  root["teacher"] = teacher;
  // Students: row i edits student i, keeping its other fields.
  const QJsonArray oldStudents = root.value("students").toArray();
  QJsonArray students;
  const auto cell = [this](int r, int c) {
    const QTableWidgetItem* item = m_students->item(r, c);
    return item == nullptr ? QString() : item->text().trimmed();
  };
  const auto number = [](const QString& text) -> QJsonValue {
    bool ok = false;
    const double value = text.toDouble(&ok);
    if (!ok) {
      return text; // keep what the user typed: the validator names the field
    }
    return value == static_cast<int>(value) && !text.contains(QLatin1Char('.')) ? QJsonValue(static_cast<int>(value))
                                                                               : QJsonValue(value);
  };
  for (int r = 0; r < m_students->rowCount(); ++r) {
    QJsonObject student = r < oldStudents.size() ? oldStudents[r].toObject() : QJsonObject{};
    student["name"] = cell(r, SName);
    QJsonObject sArch = obj(student, "architecture");
    sArch["type"] = cell(r, SType);
    sArch["layers"] = number(cell(r, SLayers));
    sArch["heads"] = number(cell(r, SHeads));
    sArch["width"] = number(cell(r, SWidth));
    sArch["ffn"] = number(cell(r, SFfn));
    student["architecture"] = sArch;
    QJsonObject sTraining = obj(student, "training");
    sTraining["epochs"] = number(cell(r, SEpochs));
    student["training"] = sTraining;
    QJsonObject objective = obj(student, "objective");
    objective["lambda"] = number(cell(r, SLambda));
    objective["temperature"] = number(cell(r, STemperature));
    objective["label_smoothing"] = number(cell(r, SSmoothing));
    objective["teacher_targets"] = cell(r, STargets);
    student["objective"] = objective;
    students.append(student);
  }
  root["students"] = students;
  m_syncing = true;
  m_json->setPlainText(QString::fromUtf8(QJsonDocument(root).toJson(QJsonDocument::Indented)));
  m_syncing = false;
  m_debounce->start();
}

bool JobEditor::loadFile(const QString& path, bool quiet) {
  QFile file(path);
  if (!file.open(QIODevice::ReadOnly)) {
    if (!quiet) {
      QMessageBox::warning(this, tr("Load job"), tr("Cannot read %1: %2").arg(path, file.errorString()));
    }
    return false;
  }
  m_baseDir = QFileInfo(path).absolutePath();
  setJsonText(QString::fromUtf8(file.readAll()));
  setWindowTitle(tr("Job editor: %1").arg(QFileInfo(path).fileName()));
  return true;
}

bool JobEditor::saveFile(const QString& path) {
  QSaveFile file(path);
  if (!file.open(QIODevice::WriteOnly) || file.write(m_json->toPlainText().toUtf8()) < 0 || !file.commit()) {
    return false;
  }
  m_baseDir = QFileInfo(path).absolutePath();
  m_taskFile->setBaseDir(m_baseDir);
  return true;
}

void JobEditor::onLoad() {
  const QString path = QFileDialog::getOpenFileName(this, tr("Load job"), QString(), tr("Job files (*.json)"));
  if (!path.isEmpty()) {
    loadFile(path);
  }
}

void JobEditor::onSave() {
  const QString path = QFileDialog::getSaveFileName(this, tr("Save job"), QString(), tr("Job files (*.json)"));
  if (!path.isEmpty() && !saveFile(path)) {
    QMessageBox::warning(this, tr("Save job"), tr("Cannot write %1").arg(path));
  }
}

} // namespace kdscope::widgets
