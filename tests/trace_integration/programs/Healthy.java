// memdx's healthy JVM: a bounded working set of byte arrays, replaced continuously for SECONDS;
// with STEP_AT (a fraction of the run) the working set doubles once then, and the heap expands
// once: one step, then flat. Prints "healthy" and how many arrays it made.
public class Healthy {
  public static void main(String[] args) throws Exception {
    double seconds = Double.parseDouble(args[0]);
    double stepAt = args.length > 1 ? Double.parseDouble(args[1]) : 2.0;
    byte[][] ring = new byte[8000][];
    long start = System.nanoTime();
    long end = start + (long) (seconds * 1e9);
    long n = 0;
    while (System.nanoTime() < end) {
      boolean stepped = System.nanoTime() - start > stepAt * seconds * 1e9;
      int size = stepped ? ring.length : ring.length / 2;
      for (int i = 0; i < 200; ++i) ring[(int) (n++ % size)] = new byte[8192 + (int) (n % 4096)];
      Thread.sleep(2);
    }
    System.out.println("healthy " + n);
  }
}
