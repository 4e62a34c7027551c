/* A stand-in for NVIDIA's libnvidia-ml.so.1 with the real C signatures of nvml.h, for the tests
 * of a machine without an NVIDIA GPU. Its devices and processes come from the file named by
 * $MEMDX_NVML_STANDIN_STATE, read at every call, so a test changes them while memdx runs:
 *
 *   device INDEX TOTAL_BYTES NAME...
 *   process DEVICE PID BASE_BYTES RATE_BYTES_PER_SECOND [graphics]
 *
 * A process's memory is BASE + RATE x the seconds since the file was last written: a growing GPU
 * allocator without a thread that rewrites the file. A device's used memory is the sum of its
 * processes'. Built three ways: with every symbol, without the _v3 process lists
 * (MEMDX_STANDIN_NO_V3: an older driver), and without any process list
 * (MEMDX_STANDIN_NO_PROCESS_LISTS). Links only libc. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

typedef int nvmlReturn_t;
#define NVML_SUCCESS 0
#define NVML_ERROR_UNINITIALIZED 1
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_ERROR_UNKNOWN 999

#define MAX_DEVICES 8
#define MAX_PROCESSES 64

struct nvmlDevice_st {
  unsigned index;
};
typedef struct nvmlDevice_st* nvmlDevice_t;

typedef struct {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
} nvmlMemory_t;

typedef struct {
  unsigned int pid;
  unsigned long long usedGpuMemory;
} nvmlProcessInfo_v1_t;

typedef struct {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
} nvmlProcessInfo_t;

struct standin_process {
  unsigned device;
  unsigned pid;
  unsigned long long bytes;
  int graphics;
};

struct standin_state {
  unsigned devices;
  char names[MAX_DEVICES][96];
  unsigned long long totals[MAX_DEVICES];
  unsigned processes;
  struct standin_process process[MAX_PROCESSES];
};

static struct nvmlDevice_st handles[MAX_DEVICES];
static int initialised;

static int read_state(struct standin_state* state) {
  memset(state, 0, sizeof(*state));
  const char* path = getenv("MEMDX_NVML_STANDIN_STATE");
  if (path == NULL) return 0;
  struct stat st;
  FILE* file = fopen(path, "r");
  if (file == NULL || fstat(fileno(file), &st) != 0) {
    if (file != NULL) fclose(file);
    return 0;
  }
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  double elapsed_s = (double)(now.tv_sec - st.st_mtim.tv_sec) + (double)(now.tv_nsec - st.st_mtim.tv_nsec) / 1e9;
  if (elapsed_s < 0) elapsed_s = 0;
  char line[256];
  while (fgets(line, sizeof(line), file) != NULL) {
    unsigned index = 0, pid = 0;
    unsigned long long total = 0, base = 0;
    double rate = 0;
    int consumed = 0;
    if (sscanf(line, "device %u %llu %n", &index, &total, &consumed) == 2 && index < MAX_DEVICES) {
      char* name = line + consumed;
      name[strcspn(name, "\n")] = '\0';
      snprintf(state->names[index], sizeof(state->names[index]), "%s", name);
      state->totals[index] = total;
      if (index + 1 > state->devices) state->devices = index + 1;
    } else if (sscanf(line, "process %u %u %llu %lf", &index, &pid, &base, &rate) == 4 &&
               state->processes < MAX_PROCESSES) {
      struct standin_process* p = &state->process[state->processes++];
      p->device = index;
      p->pid = pid;
      p->bytes = base + (unsigned long long)(rate * elapsed_s);
      p->graphics = strstr(line, "graphics") != NULL;
    }
  }
  fclose(file);
  return 1;
}

nvmlReturn_t nvmlInit_v2(void) {
  for (unsigned i = 0; i < MAX_DEVICES; ++i) handles[i].index = i;
  initialised = 1;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlInit(void) {
  return nvmlInit_v2();
}

nvmlReturn_t nvmlShutdown(void) {
  initialised = 0;
  return NVML_SUCCESS;
}

const char* nvmlErrorString(nvmlReturn_t result) {
  switch (result) {
    case NVML_SUCCESS:
      return "Success";
    case NVML_ERROR_UNINITIALIZED:
      return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT:
      return "Invalid Argument";
    case NVML_ERROR_INSUFFICIENT_SIZE:
      return "Insufficient Size";
    default:
      return "Unknown Error";
  }
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* deviceCount) {
  if (!initialised) return NVML_ERROR_UNINITIALIZED;
  if (deviceCount == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  struct standin_state state;
  read_state(&state);
  *deviceCount = state.devices;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t* device) {
  if (!initialised) return NVML_ERROR_UNINITIALIZED;
  if (device == NULL || index >= MAX_DEVICES) return NVML_ERROR_INVALID_ARGUMENT;
  *device = &handles[index];
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char* name, unsigned int length) {
  if (device == NULL || name == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  struct standin_state state;
  read_state(&state);
  if (strlen(state.names[device->index]) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
  snprintf(name, length, "%s", state.names[device->index]);
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char* uuid, unsigned int length) {
  if (device == NULL || uuid == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  snprintf(uuid, length, "GPU-00000000-0000-0000-0000-00000000000%u", device->index);
  return NVML_SUCCESS;
}

static unsigned long long used_on(const struct standin_state* state, unsigned device) {
  unsigned long long used = 0;
  for (unsigned i = 0; i < state->processes; ++i) {
    if (state->process[i].device == device) used += state->process[i].bytes;
  }
  return used;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t* memory) {
  if (device == NULL || memory == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  struct standin_state state;
  read_state(&state);
  memory->total = state.totals[device->index];
  memory->used = used_on(&state, device->index);
  memory->free = memory->total > memory->used ? memory->total - memory->used : 0;
  return NVML_SUCCESS;
}

#ifndef MEMDX_STANDIN_NO_PROCESS_LISTS
/* The process lists of every version share this: the caller's array of `record_size` records. */
static nvmlReturn_t list_processes(nvmlDevice_t device, unsigned int* count, void* infos, size_t record_size,
                                   int graphics) {
  if (device == NULL || count == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  struct standin_state state;
  read_state(&state);
  unsigned matching = 0;
  for (unsigned i = 0; i < state.processes; ++i) {
    if (state.process[i].device == device->index && state.process[i].graphics == graphics) ++matching;
  }
  if (matching > *count || (matching > 0 && infos == NULL)) {
    *count = matching;
    return NVML_ERROR_INSUFFICIENT_SIZE;
  }
  unsigned written = 0;
  for (unsigned i = 0; i < state.processes; ++i) {
    const struct standin_process* p = &state.process[i];
    if (p->device != device->index || p->graphics != graphics) continue;
    char* record = (char*)infos + written * record_size;
    memset(record, 0, record_size);
    nvmlProcessInfo_v1_t head = {p->pid, p->bytes};
    memcpy(record, &head.pid, sizeof(head.pid));
    memcpy(record + offsetof(nvmlProcessInfo_v1_t, usedGpuMemory), &head.usedGpuMemory, sizeof(head.usedGpuMemory));
    ++written;
  }
  *count = written;
  return NVML_SUCCESS;
}

#ifndef MEMDX_STANDIN_NO_V3
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int* infoCount,
                                                     nvmlProcessInfo_t* infos) {
  return list_processes(device, infoCount, infos, sizeof(nvmlProcessInfo_t), 0);
}
nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t device, unsigned int* infoCount,
                                                      nvmlProcessInfo_t* infos) {
  return list_processes(device, infoCount, infos, sizeof(nvmlProcessInfo_t), 1);
}
#endif

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device, unsigned int* infoCount,
                                                     nvmlProcessInfo_t* infos) {
  return list_processes(device, infoCount, infos, sizeof(nvmlProcessInfo_t), 0);
}
nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v2(nvmlDevice_t device, unsigned int* infoCount,
                                                      nvmlProcessInfo_t* infos) {
  return list_processes(device, infoCount, infos, sizeof(nvmlProcessInfo_t), 1);
}
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device, unsigned int* infoCount,
                                                  nvmlProcessInfo_v1_t* infos) {
  return list_processes(device, infoCount, infos, sizeof(nvmlProcessInfo_v1_t), 0);
}
nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses(nvmlDevice_t device, unsigned int* infoCount,
                                                   nvmlProcessInfo_v1_t* infos) {
  return list_processes(device, infoCount, infos, sizeof(nvmlProcessInfo_v1_t), 1);
}
#endif
