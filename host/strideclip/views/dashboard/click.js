// The laptop's click: the metronome of the athlete the coach listens to, played by the browser.
// The body of a Bokeh CustomJS callback (strideclip.views.dashboard.page), run when the metronomes
// change (beat: a ColumnDataSource) or the coach picks whom to listen to (listen: a Select).
// Clicks are scheduled on the audio clock a little ahead (Web Audio; the "two clocks" pattern of
// C. Wilson, "A Tale of Two Clocks", 2013): timers alone jitter by tens of ms. The page is sent a
// metronome only when one starts or stops; the browser counts down its remaining time itself.
const M = window.strideclipMetronome || (window.strideclipMetronome =
    {ctx: null, who: "off", cue: null, tempo: 0, next: 0, end: 0, timer: null, clicks: []});
const who = listen.value;
if (who !== "off") {
    if (!M.ctx) M.ctx = new AudioContext();  // the choice in the page is the gesture browsers want
    if (M.ctx.state === "suspended") M.ctx.resume();
}
const d = beat.data, k = d.athlete.indexOf(who);
if (!M.ctx || k < 0 || d.tempo_spm[k] <= 0) {
    M.who = who; M.cue = null; M.tempo = 0;
    return;
}
const now = M.ctx.currentTime;
if (M.who !== who || M.cue !== d.cue_t_s[k]) {  // another metronome, or another athlete's: from now
    M.who = who; M.cue = d.cue_t_s[k]; M.next = now + 0.05;
}
M.tempo = d.tempo_spm[k];
M.end = now + d.remaining_s[k];
if (!M.timer) M.timer = setInterval(() => {
    const late = M.ctx.currentTime - M.next;  // a throttled or busy page: skip the beats gone by
    if (M.tempo > 0 && late > 0) M.next += Math.ceil(late * M.tempo / 60) * 60 / M.tempo;
    while (M.tempo > 0 && M.next < M.end && M.next < M.ctx.currentTime + 0.1) {
        const t = M.next, osc = M.ctx.createOscillator(), gain = M.ctx.createGain();
        osc.frequency.value = 1500;
        gain.gain.setValueAtTime(0.6, t);
        gain.gain.exponentialRampToValueAtTime(0.001, t + 0.03);
        osc.connect(gain);
        gain.connect(M.ctx.destination);
        osc.start(t);
        osc.stop(t + 0.04);
        M.clicks.push({who: M.who, tempo: M.tempo, t: t});
        if (M.clicks.length > 500) M.clicks.shift();
        M.next += 60 / M.tempo;
    }
}, 25);
