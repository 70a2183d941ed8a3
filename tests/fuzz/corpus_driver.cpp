// Runs a libFuzzer target over seed inputs without libFuzzer (normal and sanitizer builds):
// every argument is a file whose lines are separate inputs.

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  int inputs = 0;
  for (int i = 1; i < argc; ++i) {
    std::ifstream in(argv[i]);
    if (!in) {
      std::cerr << "cannot read " << argv[i] << "\n";
      return 2;
    }
    for (std::string line; std::getline(in, line); ++inputs) {
      LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(line.data()), line.size());
    }
  }
  std::cout << inputs << " inputs run\n";
  return 0;
}
