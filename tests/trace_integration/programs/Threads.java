// Eight threads each build a HashMap of ArrayLists and add up what they hold; the main thread
// joins them and prints every thread's figures and a checksum, the same on every run. Run by the
// real-program suite (java -cp DIR Threads): a JVM starts many threads of its own as well.
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

public class Threads {
  static final int THREADS = 8;
  static final int ITEMS = 20000;
  static final int KEYS = 1000;

  static final class Worker extends Thread {
    final int id;
    long entries;
    long checksum;

    Worker(int id) {
      super("worker-" + id);
      this.id = id;
    }

    @Override
    public void run() {
      Map<Integer, List<String>> byKey = new HashMap<>();
      for (int i = 0; i < ITEMS; i++) {
        byKey.computeIfAbsent((i * 7 + id) % KEYS, k -> new ArrayList<>()).add("t" + id + "-" + i);
      }
      for (Map.Entry<Integer, List<String>> entry : byKey.entrySet()) {
        for (String s : entry.getValue()) {
          entries++;
          checksum = checksum * 31 + entry.getKey() * 17L + s.hashCode();
        }
      }
    }
  }

  public static void main(String[] args) throws InterruptedException {
    Worker[] workers = new Worker[THREADS];
    for (int t = 0; t < THREADS; t++) {
      workers[t] = new Worker(t);
      workers[t].start();
    }
    long total = 0;
    for (Worker w : workers) {
      w.join();
      System.out.println("thread " + w.id + ": " + w.entries + " entries, checksum " + w.checksum);
      total ^= w.checksum;
    }
    System.out.println("total " + total);
  }
}
