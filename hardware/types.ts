// The seams between the appliance and the devices. Nothing here knows of Telegram.

/** One climate reading. Units: °C, %RH (null on a BMP280, which has no humidity sensor), hPa. */
export interface ClimateReading {
  temperature: number;
  humidity: number | null;
  pressure: number;
}

export interface ClimateSensor {
  /** Takes one measurement. Rejects with an Error whose message says what failed and what to check. */
  read(): Promise<ClimateReading>;
  /** A short description for /status and doctor, e.g. "BME280 at 0x76 on i2c-1". */
  readonly description: string;
  close(): Promise<void>;
}

/** Still-capture options, in raspistill's terms; each camera tool gets them translated. */
export interface CaptureOptions {
  width?: number;
  height?: number;
  /** JPEG quality 1–100. */
  quality?: number;
  /** 0 or 180 (rpicam-still accepts only these). */
  rotation?: 0 | 180;
  hflip?: boolean;
  vflip?: boolean;
  /** Give up and kill the camera process after this long. */
  timeoutMs?: number;
}

export interface Camera {
  /** Resolves to a complete JPEG (starts with FFD8, ends with FFD9). */
  capture(options?: CaptureOptions): Promise<Buffer>;
  /** A short description, e.g. "rpicam-still". */
  readonly description: string;
}

/** A source of MJPEG frames: the camera process, or a simulation. */
export interface FrameSource {
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly running: boolean;
  /** The newest complete frame, or null before the first one. */
  latestFrame(): Buffer | null;
  /** Calls `listener` on each new frame; returns the unsubscribe function. */
  onFrame(listener: (frame: Buffer) => void): () => void;
}

export interface PortMapping {
  internalPort: number;
  externalPort: number;
  /** The lease the router granted, in seconds; 0 means permanent (telepi removes it itself). */
  leaseSeconds: number;
}

export interface PortMapper {
  /** Maps externalPort (TCP) on the router to internalPort on this host. */
  add(internalPort: number, externalPort: number, leaseSeconds: number): Promise<PortMapping>;
  remove(externalPort: number): Promise<void>;
  /** The router's external IPv4 address, or null when the router does not say. */
  externalIp(): Promise<string | null>;
}

export interface MotionSensor {
  /** Calls `listener` on each (debounced) rising edge; returns the unsubscribe function. */
  onMotion(listener: () => void): () => void;
  close(): Promise<void>;
}

export interface Led {
  set(on: boolean): Promise<void>;
  close(): Promise<void>;
}
