//! The Proliferate client for node: conversion, async bridging and error mapping over `proliferate-client`.
