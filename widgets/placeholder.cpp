namespace kdscope::widgets { int placeholder() { return 0; } }
