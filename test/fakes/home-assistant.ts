// Home Assistant's rules for a device-based MQTT discovery payload, written from its documentation
// (integrations/mqtt "Device discovery payload", sensor / binary_sensor / image / button MQTT pages,
// and the sensor and binary sensor device class lists with their units). No Home Assistant runs in
// the tests: this checks what Home Assistant would check, and flags keys it would silently ignore.

const sensorUnits: Record<string, readonly string[]> = {
  temperature: ['°C', '°F', 'K'],
  humidity: ['%'],
  atmospheric_pressure: ['mPa', 'Pa', 'hPa', 'kPa', 'bar', 'cbar', 'mbar', 'mmHg', 'inHg', 'inH₂O', 'psi'],
  pressure: ['mPa', 'Pa', 'hPa', 'kPa', 'bar', 'cbar', 'mbar', 'mmHg', 'inHg', 'inH₂O', 'psi'],
  illuminance: ['lx'],
  battery: ['%'],
  moisture: ['%'],
  carbon_dioxide: ['ppm'],
};
const stateClasses = ['measurement', 'measurement_angle', 'total', 'total_increasing'];
const binarySensorClasses = [
  'battery', 'battery_charging', 'carbon_monoxide', 'cold', 'connectivity', 'door', 'garage_door', 'gas', 'heat', 'light', 'lock',
  'moisture', 'motion', 'moving', 'occupancy', 'opening', 'plug', 'power', 'presence', 'problem', 'running', 'safety', 'smoke',
  'sound', 'tamper', 'update', 'vibration', 'window',
];
const buttonClasses = ['identify', 'restart', 'update'];

const entityKeys = ['platform', 'name', 'unique_id', 'device_class', 'icon', 'object_id', 'default_entity_id', 'entity_category',
  'enabled_by_default', 'availability', 'availability_topic', 'qos', 'json_attributes_topic', 'json_attributes_template'];
const platformKeys: Record<string, readonly string[]> = {
  sensor: ['state_topic', 'value_template', 'unit_of_measurement', 'state_class', 'suggested_display_precision', 'expire_after',
    'force_update', 'last_reset_value_template', 'options', 'encoding'],
  binary_sensor: ['state_topic', 'value_template', 'payload_on', 'payload_off', 'off_delay', 'expire_after', 'force_update', 'encoding'],
  image: ['image_topic', 'url_topic', 'url_template', 'content_type', 'image_encoding'],
  button: ['command_topic', 'command_template', 'payload_press', 'retain'],
};

const idPattern = /^[a-zA-Z0-9_-]+$/;

/** Every rule the payload breaks, as readable lines; empty when Home Assistant would accept all of it. */
export function discoveryProblems(topic: string, payload: unknown): string[] {
  const problems: string[] = [];
  const match = /^([^#+]+)\/device\/([^/]+)\/config$/.exec(topic);
  if (match === null) problems.push(`topic ${topic} is not <prefix>/device/<object_id>/config`);
  else if (!idPattern.test(match[2] ?? '')) problems.push(`object id ${match[2]} has characters outside [a-zA-Z0-9_-]`);
  if (typeof payload !== 'object' || payload === null) return [...problems, 'the payload is not a JSON object'];
  const root = payload as Record<string, unknown>;
  const device = root.device as Record<string, unknown> | undefined;
  if (device === undefined) problems.push('no device mapping');
  else {
    const ids = device.identifiers;
    if (!(typeof ids === 'string' || (Array.isArray(ids) && ids.length > 0 && ids.every((id) => typeof id === 'string')))) {
      problems.push('device.identifiers is not a string or a non-empty list of strings');
    }
    if (typeof device.name !== 'string' || device.name === '') problems.push('device.name is missing');
  }
  const origin = root.origin as Record<string, unknown> | undefined;
  if (origin === undefined || typeof origin.name !== 'string') problems.push('origin.name is missing (origin is required for device discovery)');
  for (const entry of (root.availability ?? []) as Array<Record<string, unknown>>) {
    if (typeof entry.topic !== 'string' || /[#+]/.test(entry.topic)) problems.push(`availability topic ${String(entry.topic)} is not a topic`);
  }
  const components = root.components as Record<string, Record<string, unknown>> | undefined;
  if (components === undefined || Object.keys(components).length === 0) return [...problems, 'no components'];
  for (const [id, component] of Object.entries(components)) problems.push(...componentProblems(id, component));
  return problems;
}

function componentProblems(id: string, c: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const say = (text: string) => problems.push(`${id}: ${text}`);
  const platform = c.platform;
  if (typeof platform !== 'string' || platform === '') return [`${id}: no platform`];
  const known = platformKeys[platform];
  if (known === undefined) return [`${id}: platform ${platform} is not one telepi's validator knows`];
  // The documented removal form: the platform alone.
  if (Object.keys(c).length === 1) return [];
  if (typeof c.unique_id !== 'string' || c.unique_id === '') say('unique_id is required for an entity component');
  for (const key of Object.keys(c)) {
    if (!entityKeys.includes(key) && !known.includes(key)) say(`unknown key ${key} (Home Assistant would ignore it)`);
  }
  const topic = (key: string) => {
    const value = c[key];
    if (typeof value !== 'string' || value === '' || /[#+]/.test(value)) say(`${key} is missing or not a topic`);
  };
  const positiveInteger = (key: string) => {
    if (c[key] !== undefined && !(Number.isInteger(c[key]) && (c[key] as number) > 0)) say(`${key} is not a positive whole number`);
  };
  if (platform === 'sensor') {
    topic('state_topic');
    const deviceClass = c.device_class as string | undefined;
    if (deviceClass !== undefined) {
      const units = sensorUnits[deviceClass];
      if (units === undefined) say(`device_class ${deviceClass} is not a sensor device class telepi expects`);
      else if (!units.includes(c.unit_of_measurement as string)) say(`unit ${String(c.unit_of_measurement)} is not allowed for ${deviceClass} (${units.join(', ')})`);
    }
    if (c.state_class !== undefined && !stateClasses.includes(c.state_class as string)) say(`state_class ${String(c.state_class)} does not exist`);
    positiveInteger('expire_after');
    if (c.suggested_display_precision !== undefined && !(Number.isInteger(c.suggested_display_precision) && (c.suggested_display_precision as number) >= 0)) {
      say('suggested_display_precision is not a whole number ≥ 0');
    }
  } else if (platform === 'binary_sensor') {
    topic('state_topic');
    if (c.device_class !== undefined && !binarySensorClasses.includes(c.device_class as string)) say(`device_class ${String(c.device_class)} is not a binary sensor class`);
    positiveInteger('off_delay');
    positiveInteger('expire_after');
  } else if (platform === 'image') {
    if ((c.image_topic === undefined) === (c.url_topic === undefined)) say('exactly one of image_topic and url_topic is required');
    if (c.image_topic !== undefined) topic('image_topic');
    if (c.content_type !== undefined && !/^image\/[a-z0-9.+-]+$/.test(c.content_type as string)) say(`content_type ${String(c.content_type)} is not an image type`);
  } else if (platform === 'button') {
    topic('command_topic');
    if (c.device_class !== undefined && !buttonClasses.includes(c.device_class as string)) say(`device_class ${String(c.device_class)} is not a button class`);
  }
  return problems;
}

/** Unique ids of every entity component in these payloads, with the ones seen twice. */
export function duplicateUniqueIds(payloads: unknown[]): string[] {
  const seen = new Set<string>();
  const duplicates: string[] = [];
  for (const payload of payloads) {
    const components = (payload as { components?: Record<string, { unique_id?: string }> }).components ?? {};
    for (const component of Object.values(components)) {
      const id = component.unique_id;
      if (id === undefined) continue;
      if (seen.has(id)) duplicates.push(id);
      seen.add(id);
    }
  }
  return duplicates;
}
