#pragma once

namespace kdscope::widgets {

/// Creates the QApplication and the main window and runs the event loop.
int runApplication(int argc, char** argv);

} // namespace kdscope::widgets
