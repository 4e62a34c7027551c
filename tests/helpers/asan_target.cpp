// Built with -fsanitize=address (tests/helpers/CMakeLists.txt): allocates, frees, prints "asan ok".
#include <cstdio>
#include <vector>

int main() {
  std::vector<int> numbers(1000, 7);
  long sum = 0;
  for (int n : numbers) sum += n;
  std::printf("asan ok %ld\n", sum);
  return 0;
}
